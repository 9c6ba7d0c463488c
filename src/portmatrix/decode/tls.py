"""The TLS ClientHello: the server name (SNI) and application protocols (ALPN)
a client asks for, read from the first bytes it sends (TCP) or from the CRYPTO
frames of a QUIC Initial (`quic.py`).

A small reader of just those fields, run on the few packets that start with a
ClientHello; everything else of the handshake is skipped by its length. Work
is bounded by the message: every length is checked against what is there, so
a damaged or hostile hello ends the reading (`Hello.status`), never the run.
The name is the client's own word — nothing in the hello proves the server
holds it — so whoever uses it must say so (`decode.names`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from portmatrix.textforms import printable

HANDSHAKE = 0x16  # TLS record type
CLIENT_HELLO = 1  # handshake message type
SERVER_NAME, ALPN, SUPPORTED_VERSIONS = 0, 16, 43  # extension types
MAX_HELLO = 1 << 16  # bytes of a ClientHello read at most (real ones are under 2 kB)
MAX_NAME = 253

OK, CUT, DAMAGED = "ok", "cut", "damaged"
"""ok: the whole hello was read; cut: the bytes end before the hello does (the
rest is in a later segment or packet), what came before was read; damaged: a
length or value that cannot be right — nothing from it is used."""

TLS13 = 0x0304
VERSIONS = {0x0300: "SSL 3.0", 0x0301: "1.0", 0x0302: "1.1", 0x0303: "1.2", TLS13: "1.3"}


@dataclass
class Hello:
    status: str = CUT
    sni: str | None = None
    alpn: list[str] = field(default_factory=list)
    version: str | None = None  # the highest version offered ("1.3", "1.2", ...)


class _Damaged(Exception):
    pass


class _Cut(Exception):
    pass


def is_record_start(head: bytes) -> bool:
    """Do these first bytes start a TLS handshake record holding a ClientHello?"""
    return (
        len(head) >= 6
        and head[0] == HANDSHAKE
        and head[1] == 3
        and head[2] <= 4
        and head[5] == CLIENT_HELLO
    )


def from_records(payload: bytes) -> Hello:
    """The ClientHello at the start of a TCP payload (TLS records). Handshake
    records are joined (a hello may span records); a payload that ends before
    the hello does gives what it holds, status CUT."""
    message = bytearray()
    pos = 0
    complete = True
    while pos < len(payload) and len(message) < MAX_HELLO:
        if len(payload) - pos < 5:
            complete = False
            break
        if payload[pos] != HANDSHAKE or payload[pos + 1] != 3:
            if not message:
                return Hello(DAMAGED)
            break  # a record after the hello's (a second handshake message, data)
        length = int.from_bytes(payload[pos + 3 : pos + 5], "big")
        if length == 0 or length > 18432:  # RFC 8446: at most 2^14 + 2048
            return Hello(DAMAGED)
        body = payload[pos + 5 : pos + 5 + length]
        message += body
        if len(body) < length:
            complete = False
            break
        pos += 5 + length
        if _hello_length(message) is not None and len(message) >= _hello_length(message):
            break
    hello = client_hello(bytes(message))
    if hello.status == OK and not complete and _hello_length(message) is None:
        hello.status = CUT
    return hello


def _hello_length(message: bytes | bytearray) -> int | None:
    if len(message) < 4:
        return None
    return 4 + int.from_bytes(message[1:4], "big")


def client_hello(message: bytes) -> Hello:
    """A ClientHello handshake message (type, 3-byte length, body): what it asks for."""
    hello = Hello()
    try:
        _read(message, hello)
        hello.status = OK
    except _Cut:
        hello.status = CUT
    except _Damaged:
        return Hello(DAMAGED)
    return hello


class _Reader:
    """Bounds-checked reads over one message: past its end is CUT, past a declared
    length is DAMAGED (a length that overruns the enclosing one)."""

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None, strict=False) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end
        self.strict = strict  # inside a length the message declared: overrun is damage

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise _Damaged() if self.strict else _Cut()
        if self.pos + n > len(self.data):
            raise _Cut()
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, size_bytes: int) -> _Reader:
        """A length-prefixed part, read by its own reader; this one skips it."""
        length = self.uint(size_bytes)
        if self.pos + length > self.end:
            raise _Damaged()
        inner = _Reader(self.data, self.pos, self.pos + length, strict=True)
        self.pos += length
        return inner

    def left(self) -> int:
        return min(self.end, len(self.data)) - self.pos


def _read(message: bytes, hello: Hello) -> None:
    top = _Reader(message)
    if top.uint(1) != CLIENT_HELLO:
        raise _Damaged()
    length = top.uint(3)
    if length < 38 or length > MAX_HELLO:
        raise _Damaged()
    r = _Reader(message, top.pos, top.pos + length, strict=True)
    legacy = r.uint(2)
    if legacy >> 8 != 3:
        raise _Damaged()
    hello.version = VERSIONS.get(legacy)
    r.take(32)  # random
    session_id = r.uint(1)
    if session_id > 32:
        raise _Damaged()
    r.take(session_id)
    suites = r.uint(2)
    if suites % 2 or suites == 0:
        raise _Damaged()
    r.take(suites)
    r.vector(1)  # compression methods
    if r.pos == r.end:  # no extensions at all (SSL 3.0 style)
        return
    extensions = r.vector(2)
    while extensions.pos < extensions.end:
        kind = extensions.uint(2)
        body = extensions.vector(2)
        if kind == SERVER_NAME:
            hello.sni = _server_name(body)
        elif kind == ALPN:
            hello.alpn = _alpn(body)
        elif kind == SUPPORTED_VERSIONS:
            best = _best_version(body)
            if best:
                hello.version = best
    if len(message) < r.end:  # the last extension skipped was not all there
        raise _Cut()


def _server_name(r: _Reader) -> str | None:
    names = r.vector(2)
    while names.pos < names.end:
        kind = names.uint(1)
        value = names.vector(2)
        if kind == 0:  # host_name
            return hostname(value.take(value.end - value.pos))
    return None


def hostname(raw: bytes) -> str | None:
    """A DNS hostname in text, lower case, or None when it is not one (too long,
    characters no hostname has, an address written as a name)."""
    name = raw.decode("ascii", "replace").lower().rstrip(".")
    if not name or len(name) > MAX_NAME:
        return None
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-._")
    if not set(name) <= allowed or ".." in name:
        return None
    return name


def _alpn(r: _Reader) -> list[str]:
    out = []
    protocols = r.vector(2)
    while protocols.pos < protocols.end and len(out) < 16:
        value = protocols.vector(1)
        out.append(printable(value.take(value.end - value.pos).decode("ascii", "replace")))
    return out


def _best_version(r: _Reader) -> str | None:
    versions = r.vector(1)
    best = 0
    while versions.left() >= 2:
        v = versions.uint(2)
        if v in VERSIONS:  # GREASE values (0x?a?a) are not versions
            best = max(best, v)
    return VERSIONS.get(best)
