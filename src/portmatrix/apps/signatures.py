"""What a flow's first bytes say it is: payload signatures, one per protocol.

Each signature reads the first payload each side sent (`Sample`) and answers
with the protocol's details, or None. They test what the protocol's own
specification fixes at the start of a conversation — a banner, a record
header, a request line, a length that matches — never the port: an SSH
server moved to 2222 is SSH, random bytes on 22 are not. The table is tried in
order, the first answer wins; a flow none of them recognises is unidentified.

Work is bounded: a sample is at most SAMPLE bytes a side, and every reader is
a few comparisons, a regular expression over a line, or the bounded TLS and
HTTP readers of `decode`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from portmatrix.decode import http as http_reader
from portmatrix.decode import quic as quic_reader
from portmatrix.decode import tls as tls_reader
from portmatrix.textforms import printable

SAMPLE = 4096  # bytes kept of each side's first payloads


@dataclass
class Sample:
    """The start of a flow's payload: what the initiator sent first, and the responder."""

    proto: str  # tcp | udp | ...
    client: bytes = b""
    server: bytes = b""


Details = dict[str, str]


SHOWN = 128  # bytes of a detail (a banner, a cookie) shown


_SSH = re.compile(rb"^SSH-(\d\.\d+)-([\x21-\x7e]{1,200})")


def ssh(s: Sample) -> Details | None:
    """RFC 4253, 4.2: each side first sends `SSH-protoversion-softwareversion`."""
    for side, who in ((s.server, "server"), (s.client, "client")):
        m = _SSH.match(side)
        if m:
            return {who: printable(m.group(2), SHOWN)}
    return None


def tls(s: Sample) -> Details | None:
    """A TLS record carrying a ClientHello (RFC 8446, 5.1 and 4.1.2), or a
    ServerHello when the client's start was not captured."""
    if tls_reader.is_record_start(s.client[:6]):
        hello = tls_reader.from_records(s.client)
        if hello.status == tls_reader.DAMAGED:
            return None
        out = {}
        if hello.sni:
            out["sni"] = hello.sni
        if hello.alpn:
            out["alpn"] = ",".join(hello.alpn)
        if hello.version:
            out["version"] = hello.version
        return out
    if _tls_record(s.client) or _tls_record(s.server):
        return {}  # the start was not captured: records of a session under way
    return None


def _tls_record(data: bytes) -> bool:
    """A TLS record header: content type 20-23, version 3.1-3.4, a length TLS allows."""
    return (
        len(data) >= 5
        and 20 <= data[0] <= 23
        and data[1] == 3
        and 1 <= data[2] <= 4
        and 0 < int.from_bytes(data[3:5], "big") <= 18432
    )


def http(s: Sample) -> Details | None:
    """An HTTP/1.x request line (RFC 9112, 3), or a status line in answer to one."""
    if http_reader.is_request_start(s.client[:8]):
        req = http_reader.request(s.client)
        if req.status == http_reader.DAMAGED:
            return None
        out = {"method": req.method or ""}
        if req.host:
            out["host"] = req.host
        if req.user_agent:
            out["user_agent"] = req.user_agent
        return out
    if re.match(rb"^HTTP/1\.[01] \d{3} ", s.server) and not s.client:
        return {}
    return None


_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def http2(s: Sample) -> Details | None:
    """HTTP/2 with prior knowledge (cleartext): the client preface (RFC 9113, 3.4)."""
    return {} if s.client.startswith(_H2_PREFACE) else None


def smb(s: Sample) -> Details | None:
    """SMB over direct TCP: a NetBIOS session message (type 0, 3-byte length) holding
    an SMB1 (\\xffSMB), SMB2 (\\xfeSMB) or encrypted SMB3 (\\xfdSMB) header."""
    for side in (s.client, s.server):
        if len(side) >= 8 and side[0] == 0 and side[4:8] in (b"\xffSMB", b"\xfeSMB", b"\xfdSMB"):
            return {"dialect": {0xFF: "1", 0xFE: "2", 0xFD: "3 (encrypted)"}[side[4]]}
    return None


def rdp(s: Sample) -> Details | None:
    """RDP's first message: TPKT (version 3) with an X.224 Connection Request
    (0xE0) carrying a `Cookie: mstshash=` or an RDP Negotiation Request
    ([MS-RDPBCGR] 2.2.1.1)."""
    c = s.client
    if len(c) < 11 or c[0] != 3 or c[1] != 0 or c[5] != 0xE0:
        return None
    length = int.from_bytes(c[2:4], "big")
    if length != min(len(c), length) or length < 11:
        return None
    body = c[11:length]
    cookie = re.match(rb"Cookie: mstshash=([\x21-\x7e]{0,64})\r\n", body)
    negotiation = len(body) >= 8 and body[-8] == 1 and body[-6:-4] == b"\x08\x00"
    if not cookie and not negotiation:
        return None
    return {"cookie": printable(cookie.group(1), SHOWN)} if cookie else {}


_PG_CODES = {196608: "startup", 80877103: "ssl-request", 80877104: "gss-request"}


def postgresql(s: Sample) -> Details | None:
    """The client's first message (PostgreSQL protocol 3, "Message Formats"): a
    length, then the protocol version 3.0, or the SSL / GSS encryption request."""
    c = s.client
    if len(c) < 8:
        return None
    length, code = int.from_bytes(c[:4], "big"), int.from_bytes(c[4:8], "big")
    if code not in _PG_CODES or not 8 <= length <= 10000 or length > len(c) + 4096:
        return None
    if code == 196608 and length > 8:
        params = c[8:length].split(b"\x00")
        pairs = dict(zip(params[0::2], params[1::2], strict=False))
        if b"user" not in pairs:
            return None
        return {"user": printable(pairs[b"user"], 64)}
    if length != 8:
        return None
    return {"request": _PG_CODES[code]}


_RESP_ARRAY = re.compile(rb"^\*(\d{1,4})\r\n\$(\d{1,6})\r\n([A-Za-z]{1,20})\r\n")


def redis(s: Sample) -> Details | None:
    """A client command in RESP (the Redis serialization protocol): an array of
    bulk strings, the first one the command name, its length matching."""
    m = _RESP_ARRAY.match(s.client)
    if not m or int(m.group(2)) != len(m.group(3)):
        return None
    return {"command": m.group(3).decode().upper()}


_IRC_CLIENT = re.compile(
    rb"^(?:(?:CAP LS[ \d]*|PASS \S+)\r?\n)*"
    rb"(?:NICK (\S{1,64})\r?\n|USER \S{1,64} \S{1,64} \S{1,64} :)"
)
_IRC_SERVER = re.compile(rb"^:[\x21-\x7e]{1,255} (NOTICE|\d{3}) ")


def irc(s: Sample) -> Details | None:
    """IRC registration (RFC 2812, 3.1): the client's NICK line or its full USER
    command (after CAP LS or PASS), or a server's first line, prefixed with its name."""
    m = _IRC_CLIENT.match(s.client)
    if m:
        return {"nick": printable(m.group(1), 64)} if m.group(1) else {}
    return {} if _IRC_SERVER.match(s.server) and not s.client[:1].isdigit() else None


_MYSQL_VERSION = re.compile(rb"^[\x21-\x7e]{1,60}\x00")


def mysql(s: Sample) -> Details | None:
    """The server's handshake packet (protocol 10): a 3-byte length that matches,
    sequence 0, version 10, then the server version as a C string."""
    v = s.server
    if len(v) < 6 or v[3] != 0 or v[4] != 10:
        return None
    length = int.from_bytes(v[:3], "little")
    if not 10 <= length <= len(v) - 4:
        return None
    m = _MYSQL_VERSION.match(v[5:])
    return {"server": printable(m.group(0)[:-1], SHOWN)} if m else None


_SMTP_CLIENT = re.compile(rb"^(EHLO|HELO) [\x21-\x7e]{1,255}\r?\n", re.IGNORECASE)
_FTP_CLIENT = re.compile(
    rb"^(?:(?:USER|PASS|ACCT|CWD|RETR|STOR|LIST|NLST|PORT|EPRT|MKD|RMD|DELE|TYPE)"
    rb" [\x20-\x7e]{0,255}|AUTH (?:TLS|SSL)|FEAT|SYST|PASV|EPSV|PWD|QUIT)\r?\n",
    re.IGNORECASE,
)
_FTP_REPLY = re.compile(rb"^[1-5]\d\d[ -][\x20-\x7e]*\r?\n")
_GREETING = re.compile(rb"^220[ -]([\x20-\x7e]{0,200})")


def smtp(s: Sample) -> Details | None:
    """A 220 greeting answered by EHLO/HELO (RFC 5321, 4.1.1.1), or a greeting
    that names (E)SMTP when the client said nothing yet."""
    greeting = _GREETING.match(s.server)
    if _SMTP_CLIENT.match(s.client) and (greeting or not s.server):
        return {"greeting": printable(greeting.group(1), SHOWN)} if greeting else {}
    if greeting and b"SMTP" in greeting.group(1).upper() and not s.client:
        return {"greeting": printable(greeting.group(1), SHOWN)}
    return None


def ftp(s: Sample) -> Details | None:
    """A reply line (RFC 959, 4.2) answered or preceded by an FTP command, or a
    220 greeting that names FTP."""
    greeting = _GREETING.match(s.server)
    if greeting and (_FTP_CLIENT.match(s.client) or b"FTP" in greeting.group(1).upper()):
        return {"greeting": printable(greeting.group(1), SHOWN)}
    if _FTP_REPLY.match(s.server) and _FTP_CLIENT.match(s.client):
        return {}
    return None


def telnet(s: Sample) -> Details | None:
    """Telnet option negotiation: IAC (255) then WILL, WONT, DO or DONT (RFC 854)."""
    for side in (s.server, s.client):
        if len(side) >= 3 and side[0] == 255 and 251 <= side[1] <= 254:
            return {}
    return None


def dhcp(s: Sample) -> Details | None:
    """A BOOTP/DHCP message (RFC 2131): op 1 or 2, Ethernet, the magic cookie."""
    c = s.client
    ok = s.proto == "udp" and len(c) >= 240 and c[0] in (1, 2) and c[1] == 1 and c[2] == 6
    return {} if ok and c[236:240] == b"\x63\x82\x53\x63" else None


_GQUIC_VERSION = re.compile(rb"^Q0\d\d$")


def gquic(s: Sample) -> Details | None:
    """Google QUIC: its version tag (Q043, Q046, Q050, ...) where the public
    header (up to Q043) or the long header (Q046 on) puts it."""
    c = s.client
    if s.proto != "udp" or len(c) < 13:
        return None
    if c[0] & 0x80 and _GQUIC_VERSION.match(c[1:5]):
        return {"version": c[1:5].decode()}
    if c[0] & 0x09 == 0x09 and _GQUIC_VERSION.match(c[9:13]):
        return {"version": c[9:13].decode()}
    return None


def vnc(s: Sample) -> Details | None:
    """RFB's ProtocolVersion message, server first (RFC 6143, 7.1.1)."""
    m = re.match(rb"^RFB (\d{3}\.\d{3})\n", s.server)
    return {"version": m.group(1).decode()} if m else None


def quic(s: Sample) -> Details | None:
    """A QUIC client Initial (RFC 9000, 17.2.2; v2: RFC 9369), the server name
    read from its ClientHello when it was all in the first datagram."""
    if s.proto != "udp" or not quic_reader.is_initial_start(s.client[:8]):
        return None
    hello = quic_reader.initials([("", s.client)]).get(0)
    return {"sni": hello.sni} if hello is not None and hello.sni else {}


def dns(s: Sample) -> Details | None:
    """A DNS query: one question, no answers, a name that parses (RFC 1035, 4.1)."""
    from portmatrix.decode.dns import question

    c = s.client[2:] if s.proto == "tcp" else s.client  # TCP: a 2-byte length first
    if len(c) < 17 or c[2] & 0x80 or (c[2] >> 3) & 0x0F > 2:
        return None
    if int.from_bytes(c[4:6], "big") != 1 or int.from_bytes(c[6:10], "big") != 0:
        return None
    name = question(c)
    return {"query": name} if name else None


def wireguard(s: Sample) -> Details | None:
    """WireGuard's handshake initiation: message type 1, three zero bytes, 148 bytes."""
    c = s.client
    return {} if s.proto == "udp" and len(c) == 148 and c[:4] == b"\x01\x00\x00\x00" else None


def ntp(s: Sample) -> Details | None:
    """An NTP message as its initiator sends it (RFC 5905, 7.3): 48 bytes (68 with
    a MAC), version 1-4, mode 1 (symmetric active) or 3 (client), answered, if at
    all, by mode 2 or 4."""
    c, v = s.client, s.server
    if s.proto != "udp" or len(c) not in (48, 60, 68):
        return None
    version, mode = (c[0] >> 3) & 7, c[0] & 7
    if not 1 <= version <= 4 or mode not in (1, 3):
        return None
    if v and (len(v) not in (48, 60, 68) or v[0] & 7 != mode + 1):
        return None
    return {"version": str(version)}


SIGNATURES: dict[str, Callable[[Sample], Details | None]] = {
    "ssh": ssh,
    "tls": tls,
    "http": http,
    "http2": http2,
    "smb": smb,
    "rdp": rdp,
    "postgresql": postgresql,
    "redis": redis,
    "irc": irc,
    "mysql": mysql,
    "smtp": smtp,
    "ftp": ftp,
    "vnc": vnc,
    "telnet": telnet,
    "quic": quic,
    "gquic": gquic,
    "dhcp": dhcp,
    "dns": dns,
    "wireguard": wireguard,
    "ntp": ntp,
}
"""label -> reader, tried in this order (banners and record headers before the
looser line protocols)."""


def identify(sample: Sample) -> tuple[str, Details] | None:
    """(label, details) of the first signature that recognises the sample."""
    if not sample.client and not sample.server:
        return None
    for label, read in SIGNATURES.items():
        try:
            found = read(sample)
        except (IndexError, ValueError, UnicodeError):  # a damaged message is no match
            found = None
        if found is not None:
            return label, found
    return None
