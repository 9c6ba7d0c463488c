"""Findings as RFC 5424 syslog messages, for SIEMs that take syslog, not files.

    --syslog HOST[:PORT]         UDP (port 514)
    --syslog udp://HOST[:PORT]   the same; [IPv6]:PORT in brackets
    --syslog tcp://HOST[:PORT]   TCP, octet-counted frames (RFC 6587)
    --syslog /dev/log            a local unix socket (datagram or stream)

One message per event:

    <PRI>1 TIMESTAMP HOSTNAME portmatrix PID MSGID [portmatrix@32473 PARAMS] BOM MESSAGE

facility daemon; severity err, warning, info (notice for a service that
recovered); MSGID the event (new, escalated, recovered); the structured data
carries the ECS fields a SIEM correlates on (event.id, event.action,
source.ip, destination.ip and .port, network.transport, rule.id, ...). 32473
is the private enterprise number RFC 5612 sets aside for documentation:
portmatrix has none of its own. A server that goes away is tried again at most
every RETRY seconds; what could not be sent in between is counted, and said.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from dataclasses import dataclass

from portmatrix.errors import PortmatrixError
from portmatrix.report.escape import visible

FACILITY = 3  # daemon
SEVERITY = {"error": 3, "warning": 4, "info": 6}
RECOVERED = 5  # notice
SD_ID = "portmatrix@32473"
RETRY = 30.0
HINT = "give HOST:PORT, udp://HOST:PORT, tcp://HOST:PORT or a unix socket path"
FIELDS = (
    ("event", "id"),
    ("event", "action"),
    ("event", "reason"),
    ("event", "severity"),
    ("event", "start"),
    ("event", "end"),
    ("labels", "severity"),
    ("rule", "id"),
    ("rule", "name"),
    ("rule", "ruleset"),
    ("source", "ip"),
    ("source", "domain"),
    ("destination", "ip"),
    ("destination", "port"),
    ("destination", "domain"),
    ("network", "transport"),
    ("observer", "hostname"),
)


@dataclass(frozen=True)
class Target:
    transport: str  # udp | tcp | unix
    host: str = ""
    port: int = 514
    path: str = ""

    def __str__(self) -> str:
        if self.transport == "unix":
            return self.path
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}://{host}:{self.port}"


def parse_target(text: str) -> Target:
    """Where --syslog points (PortmatrixError with the forms when it is none)."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = ("unix", text) if text.startswith("/") else ("udp", text)
    if scheme == "unix":
        return Target("unix", path=rest)
    if scheme not in ("udp", "tcp") or not rest:
        raise PortmatrixError(f"not a syslog address: {text!r}", where="--syslog", hint=HINT)
    if rest.startswith("["):
        host, _, port = rest[1:].partition("]")
        port = port.removeprefix(":")
    elif rest.count(":") == 1:
        host, _, port = rest.partition(":")
    else:
        host, port = rest, ""
    if not host or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise PortmatrixError(f"not a syslog address: {text!r}", where="--syslog", hint=HINT)
    return Target(scheme, host=host, port=int(port) if port else 514)


def _param(value) -> str:
    """A PARAM-VALUE: its controls made visible (a newline would end a message on
    some servers), then `\\`, `"` and `]` escaped as RFC 5424 asks."""
    text = visible(str(value))
    for ch in ("\\", '"', "]"):
        text = text.replace(ch, "\\" + ch)
    return text


def format_message(record: dict, hostname: str | None = None, pid: int | None = None) -> bytes:
    """One RFC 5424 message of an ECS event record (`report.formats.ecs_finding`)."""
    event = record["event"]
    reason = event.get("reason", "new")
    severity = RECOVERED if reason == "recovered" else SEVERITY[record["labels"]["severity"]]
    params = []
    for group, name in FIELDS:
        value = record.get(group, {}).get(name)
        if value is not None:
            params.append(f'{group}.{name}="{_param(value)}"')
    when = record.get("event", {}).get("created") or time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime()
    )
    header = (
        f"<{FACILITY * 8 + severity}>1 {when} {hostname or socket.gethostname()} portmatrix "
        f"{pid or os.getpid()} {reason}"
    )
    sd = f"[{SD_ID} {' '.join(params)}]"
    return f"{header} {sd} ".encode() + b"\xef\xbb\xbf" + visible(record["message"]).encode()


class Syslog:
    """A connection to a syslog server, opened (and checked) before capture starts."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.sent = 0
        self.unsent = 0
        self._sock: socket.socket | None = None
        self._stream = False
        self._retry_at = 0.0
        try:
            self._connect()
        except OSError as exc:
            raise PortmatrixError(
                f"cannot reach {target}: {exc.strerror or exc}", where="--syslog", hint=HINT
            ) from None

    def _connect(self) -> None:
        t = self.target
        if t.transport == "unix":
            if not stat.S_ISSOCK(os.stat(t.path).st_mode):
                raise OSError(0, "not a unix socket")
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                sock = socket.socket(socket.AF_UNIX, kind)
                try:
                    sock.connect(t.path)
                except OSError:
                    sock.close()
                    if kind == socket.SOCK_STREAM:
                        raise
                    continue
                self._sock, self._stream = sock, kind == socket.SOCK_STREAM
                return
        kind = socket.SOCK_STREAM if t.transport == "tcp" else socket.SOCK_DGRAM
        family, _, _, _, address = socket.getaddrinfo(t.host, t.port, type=kind)[0]
        sock = socket.socket(family, kind)
        sock.settimeout(2.0)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        self._sock, self._stream = sock, kind == socket.SOCK_STREAM

    def send(self, record: dict) -> None:
        """Send one event; OSError when it could not go (said once by the caller)."""
        message = format_message(record)
        if self.target.transport == "tcp":
            message = f"{len(message)} ".encode() + message
        elif self._stream:
            message += b"\n"
        if self._sock is None:
            if time.monotonic() < self._retry_at:
                self.unsent += 1
                return
            try:
                self._connect()
            except OSError:
                self._retry_at = time.monotonic() + RETRY
                self.unsent += 1
                raise
        try:
            self._sock.sendall(message) if self._stream else self._sock.send(message)
            self.sent += 1
        except OSError:
            self.unsent += 1
            if self._stream:  # a datagram socket stays: the next message may get through
                self.close()
                self._retry_at = time.monotonic() + RETRY
            raise

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
