"""An HTTP/1.x request's first lines: method, target, Host and User-Agent, read
from the first bytes a client sends (for hostname roles and application labels).
A request line without a version is HTTP/0.9 (a bare `GET /`, no headers).

Only the request line and the header lines in the first MAX_HEAD bytes are
read, at most MAX_HEADERS of them; a request cut short gives what it holds.
The Host is the client's own word, like TLS SNI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from portmatrix.decode.tls import hostname
from portmatrix.textforms import printable

METHODS = (b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT")
MAX_HEAD = 8192
MAX_HEADERS = 64
MAX_FIELD = 256  # characters of a reported value (a user agent) kept

OK, CUT, DAMAGED = "ok", "cut", "damaged"

_REQUEST_LINE = re.compile(rb"^([A-Z]{3,7}) ([\x21-\x7e]{1,4096})(?: (HTTP/1\.[01]))?$")
_PORT = re.compile(r":\d{1,5}$")


@dataclass
class Request:
    status: str = DAMAGED
    method: str | None = None
    target: str | None = None
    host: str | None = None  # a hostname (an address in Host is no name: None)
    user_agent: str | None = None


def is_request_start(head: bytes) -> bool:
    """Do these first bytes start an HTTP request (a known method and a space)?"""
    return any(head.startswith(m + b" ") for m in METHODS)


def request(payload: bytes) -> Request:
    """The request at the start of a TCP payload."""
    head = payload[:MAX_HEAD]
    lines = head.split(b"\r\n")
    ended = b"\r\n\r\n" in head
    m = _REQUEST_LINE.match(lines[0]) if len(lines) > 1 else None
    simple = m is not None and m.group(3) is None  # HTTP/0.9: GET, then nothing
    if m is None or m.group(1) not in METHODS or (simple and (m.group(1) != b"GET" or lines[1])):
        return Request(CUT if len(lines) == 1 and is_request_start(head) else DAMAGED)
    out = Request(
        OK if ended else CUT,
        method=m.group(1).decode(),
        target=_text(m.group(2)),
    )
    for line in lines[1 : 1 + MAX_HEADERS]:
        if not line:
            break
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            # Cut short, or the next segment of the capture does not follow this one
            # (one was lost): the headers read so far stand.
            out.status = CUT
            break
        field = name.lower()
        if field == b"host" and out.host is None:
            text = value.strip().decode("ascii", "replace")
            out.host = hostname(_PORT.sub("", text).encode()) if not text.startswith("[") else None
            if out.host and out.host.replace(".", "").isdigit():
                out.host = None  # an IPv4 address, not a name
        elif field == b"user-agent" and out.user_agent is None:
            out.user_agent = _text(value.strip())
    return out


def _text(raw: bytes) -> str:
    """Printable text of a field, cut to MAX_FIELD bytes."""
    return printable(raw, MAX_FIELD)
