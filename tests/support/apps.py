"""The first bytes of real application protocols, built from their specifications,
and captures holding them on their own port and on a foreign one: the test set
of application labels and of hostnames learned from TLS, HTTP and QUIC.

`CASES` is the table: a label, the port the protocol is known on, who speaks
first, and the messages of a short conversation. `conversation` turns one into
packets; `quic_initial` encrypts a ClientHello as a QUIC client does (with the
`cryptography` package's AES-GCM: an implementation independent of ours).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from portmatrix.testing.captures import ether, ip

CLIENT, SERVER = "c", "s"


def client_hello(
    sni: str | None = "admin.example.com",
    alpn: tuple[str, ...] = ("h2", "http/1.1"),
    *,
    versions: tuple[int, ...] = (0x0304, 0x0303),
    pad: int = 0,
) -> bytes:
    """A ClientHello handshake message (no record header), extensions in the order
    browsers send the ones that matter; `pad` bytes of padding extension (21)."""
    ext = b""
    if sni is not None:
        name = sni.encode()
        entry = b"\x00" + struct.pack(">H", len(name)) + name
        ext += _ext(0, struct.pack(">H", len(entry)) + entry)
    ext += _ext(23, b"")  # extended master secret
    if alpn:
        protos = b"".join(bytes([len(p)]) + p.encode() for p in alpn)
        ext += _ext(16, struct.pack(">H", len(protos)) + protos)
    if versions:
        vs = b"".join(struct.pack(">H", v) for v in (0x0A0A, *versions))  # with GREASE
        ext += _ext(43, bytes([len(vs)]) + vs)
    ext += _ext(51, struct.pack(">HHH", 34, 0x001D, 32) + bytes(range(32)))  # key share
    if pad:
        ext += _ext(21, bytes(pad))
    body = (
        b"\x03\x03"
        + bytes(range(32))
        + b"\x20"
        + bytes(32)
        + struct.pack(">H", 6)
        + b"\x13\x01\x13\x02\xc0\x2f"
        + b"\x01\x00"
        + struct.pack(">H", len(ext))
        + ext
    )
    return b"\x01" + len(body).to_bytes(3, "big") + body


def tls_record(message: bytes, version: int = 0x0301) -> bytes:
    return b"\x16" + struct.pack(">HH", version, len(message)) + message


def _ext(kind: int, body: bytes) -> bytes:
    return struct.pack(">HH", kind, len(body)) + body


SERVER_HELLO = tls_record(
    b"\x02\x00\x00\x2a\x03\x03" + bytes(32) + b"\x00\x13\x01\x00\x00\x02\x00\x00", 0x0303
)


def http_request(host: str = "console.example.com", method: str = "GET") -> bytes:
    return (
        f"{method} /admin/login HTTP/1.1\r\nHost: {host}\r\n"
        "User-Agent: curl/8.4.0\r\nAccept: */*\r\n\r\n"
    ).encode()


def _smb2_negotiate() -> bytes:
    header = b"\xfeSMB" + struct.pack(
        "<HHIHHIIQIIQ16s", 64, 0, 0, 0, 31, 0, 0, 0, 0xFEFF, 0, 0, bytes(16)
    )
    body = struct.pack("<HHHHI16sIHH", 36, 2, 1, 0, 0x7F, bytes(16), 0, 0, 0) + b"\x02\x02\x10\x02"
    msg = header + body
    return b"\x00" + len(msg).to_bytes(3, "big") + msg


def _rdp_request() -> bytes:
    cookie = b"Cookie: mstshash=administrator\r\n"
    neg = b"\x01\x00\x08\x00\x0b\x00\x00\x00"
    x224 = bytes([6 + len(cookie) + len(neg)]) + b"\xe0\x00\x00\x00\x00\x00" + cookie + neg
    return b"\x03\x00" + struct.pack(">H", 4 + len(x224)) + x224


def _pg_startup() -> bytes:
    params = b"user\x00postgres\x00database\x00app\x00application_name\x00psql\x00\x00"
    return struct.pack(">II", 8 + len(params), 196608) + params


def _mysql_greeting() -> bytes:
    body = b"\x0a8.0.36\x00" + struct.pack("<I", 12) + b"abcdefgh\x00" + b"\xff\xf7\x21\x02\x00"
    body += b"\xff\xdf\x15" + bytes(10) + b"ijklmnopqrst\x00mysql_native_password\x00"
    return len(body).to_bytes(3, "little") + b"\x00" + body


@dataclass(frozen=True)
class Case:
    """A protocol's test conversation: (side, bytes) messages in order."""

    label: str  # the label a reader must give
    proto: str  # tcp | udp
    port: int  # the port it is known on
    messages: tuple[tuple[str, bytes], ...]
    foreign: int = 8443  # a port that is not its own

    @property
    def name(self) -> str:
        return self.label


CASES = (
    Case(
        "ssh",
        "tcp",
        22,
        (
            (SERVER, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
            (CLIENT, b"SSH-2.0-OpenSSH_9.6\r\n"),
            (CLIENT, b"\x00\x00\x05\xdc\x06\x14" + bytes(16) + b"\x00\x00\x01\x0ecurve25519"),
        ),
        foreign=2222,
    ),
    Case(
        "tls",
        "tcp",
        443,
        ((CLIENT, tls_record(client_hello())), (SERVER, SERVER_HELLO)),
        foreign=8443,
    ),
    Case(
        "http",
        "tcp",
        80,
        (
            (CLIENT, http_request()),
            (SERVER, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ),
        foreign=8081,
    ),
    Case(
        "smb",
        "tcp",
        445,
        ((CLIENT, _smb2_negotiate()), (SERVER, b"\x00\x00\x00\x48\xfeSMB" + bytes(64))),
        foreign=4445,
    ),
    Case(
        "rdp",
        "tcp",
        3389,
        (
            (CLIENT, _rdp_request()),
            (
                SERVER,
                b"\x03\x00\x00\x13\x0e\xd0\x00\x00\x12\x34\x00"
                + b"\x02\x00\x08\x00\x02\x00\x00\x00",
            ),
        ),
        foreign=13389,
    ),
    Case(
        "postgresql",
        "tcp",
        5432,
        ((CLIENT, _pg_startup()), (SERVER, b"R\x00\x00\x00\x0c\x00\x00\x00\x05salt")),
        foreign=15432,
    ),
    Case(
        "redis",
        "tcp",
        6379,
        (
            (CLIENT, b"*2\r\n$4\r\nAUTH\r\n$8\r\nhunter22\r\n"),
            (SERVER, b"+OK\r\n"),
            (CLIENT, b"*1\r\n$4\r\nKEYS\r\n"),
        ),
        foreign=7777,
    ),
    Case(
        "irc",
        "tcp",
        6667,
        (
            (CLIENT, b"NICK bot1234\r\nUSER bot1234 0 * :bot\r\n"),
            (SERVER, b":irc.example.net NOTICE * :*** Looking up your hostname...\r\n"),
            (CLIENT, b"JOIN #control\r\n"),
        ),
        foreign=443,
    ),
    Case(
        "mysql",
        "tcp",
        3306,
        ((SERVER, _mysql_greeting()), (CLIENT, b"\x20\x00\x00\x01" + bytes(32))),
        foreign=13306,
    ),
    Case(
        "smtp",
        "tcp",
        25,
        (
            (SERVER, b"220 mail.example.com ESMTP Postfix\r\n"),
            (CLIENT, b"EHLO client.example.com\r\n"),
        ),
        foreign=2525,
    ),
    Case(
        "ftp",
        "tcp",
        21,
        ((SERVER, b"220 (vsFTPd 3.0.3)\r\n"), (CLIENT, b"USER anonymous\r\n")),
        foreign=2121,
    ),
)
BY_LABEL = {c.label: c for c in CASES}
UNIDENTIFIED_CASE = Case(
    "unidentified",
    "tcp",
    22,  # on SSH's port, yet not SSH: the port must not name it
    ((CLIENT, bytes(range(7, 250))), (SERVER, bytes(range(250, 7, -1)))),
    foreign=40404,
)


def conversation(
    client: str,
    server: str,
    sport: int,
    dport: int,
    messages,
    *,
    proto: str = "tcp",
    isn: int = 1000,
    server_isn: int = 50000,
) -> list:
    """IP packets of a connection: the handshake (TCP), each message from its side
    with the other side's acknowledgement, and FIN both ways."""
    from scapy.layers.inet import TCP, UDP

    if proto == "udp":
        return [
            (ip(client, server) / UDP(sport=sport, dport=dport) / data)
            if side == CLIENT
            else (ip(server, client) / UDP(sport=dport, dport=sport) / data)
            for side, data in messages
        ]
    seq = {CLIENT: isn + 1, SERVER: server_isn + 1}

    def seg(side, flags, load=b""):
        src, dst, sp, dp = (
            (client, server, sport, dport) if side == CLIENT else (server, client, dport, sport)
        )
        other = SERVER if side == CLIENT else CLIENT
        pkt = ip(src, dst) / TCP(sport=sp, dport=dp, flags=flags, seq=seq[side], ack=seq[other])
        seq[side] += len(load)
        return pkt / load if load else pkt

    out = [
        ip(client, server) / TCP(sport=sport, dport=dport, flags="S", seq=isn),
        ip(server, client) / TCP(sport=dport, dport=sport, flags="SA", seq=server_isn, ack=isn + 1),
        ip(client, server)
        / TCP(sport=sport, dport=dport, flags="A", seq=isn + 1, ack=server_isn + 1),
    ]
    for side, data in messages:
        out.append(seg(side, "PA", data))
        out.append(seg(SERVER if side == CLIENT else CLIENT, "A"))
    out.append(seg(CLIENT, "FA"))
    seq[CLIENT] += 1
    out.append(seg(SERVER, "FA"))
    seq[SERVER] += 1
    out.append(seg(CLIENT, "A"))
    return out


def frames_of(packets, vlans=()) -> list:
    return [ether(p, vlans=vlans) for p in packets]


# QUIC -----------------------------------------------------------------------


def quic_initial(
    hello: bytes,
    dcid: bytes = bytes.fromhex("8394c8f03e515708"),
    *,
    version: int = 1,
    pn: int = 2,
    offset: int = 0,
    pad_to: int = 1200,
) -> bytes:
    """A client Initial carrying `hello` (a ClientHello message, or part of one at
    `offset`) in a CRYPTO frame, protected as RFC 9001 says, padded to `pad_to`."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from portmatrix.decode.quic import INITIAL_TYPE, client_keys

    keys = client_keys(dcid, version)
    crypto = b"\x06" + _varint(offset) + _varint(len(hello)) + hello
    pn_bytes = pn.to_bytes(4, "big")
    first = 0xC0 | (INITIAL_TYPE[version] << 4) | 0x03  # 4-byte packet number
    scid = b"\x01\x02\x03\x04"
    head = (
        bytes([first])
        + version.to_bytes(4, "big")
        + bytes([len(dcid)])
        + dcid
        + bytes([len(scid)])
        + scid
        + b"\x00"  # no token
    )
    size = max(len(crypto) + 16 + 4, pad_to - len(head) - 2)
    plain = crypto + bytes(size - 4 - 16 - len(crypto))  # PADDING frames
    head += _varint(size, 2) + pn_bytes
    nonce = bytes(a ^ b for a, b in zip(keys.iv, pn.to_bytes(12, "big"), strict=True))
    sealed = AESGCM(keys.key).encrypt(nonce, plain, head)
    pn_offset = len(head) - 4
    sample = sealed[4 - 4 : 16] if False else (head + sealed)[pn_offset + 4 : pn_offset + 20]
    encryptor = Cipher(algorithms.AES(keys.hp), modes.ECB()).encryptor()
    mask = encryptor.update(sample) + encryptor.finalize()
    protected = bytearray(head + sealed)
    protected[0] ^= mask[0] & 0x0F
    for k in range(4):
        protected[pn_offset + k] ^= mask[1 + k]
    return bytes(protected)


def _varint(value: int, size: int | None = None) -> bytes:
    if size is None:
        size = 1 if value < 64 else 2 if value < 16384 else 4
    prefix = {1: 0, 2: 0x40, 4: 0x80, 8: 0xC0}[size]
    data = value.to_bytes(size, "big")
    return bytes([data[0] | prefix]) + data[1:]
