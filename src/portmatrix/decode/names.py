"""Hostnames clients name in their first bytes: TLS SNI, HTTP Host, QUIC's SNI.

A matrix may give a role by hostname (a vendor's API or S3 endpoint). DNS
answers map such a name to addresses when the clients' lookups were captured
(`dns.py`); the name a client puts in its TLS ClientHello, HTTP request or QUIC
Initial names the destination of that very connection, even when the lookup
happened long before the capture. Such a *claim* is the client's word — a
client can put any name there (SNI is what domain fronting forges) — so it maps
the destination of that flow only, never an address for the whole capture,
and the reports say how each name was learned (`policy.roles`).

Reading is columnar: one pass of vectorized tests over a batch's TCP segments
and large UDP datagrams finds the few whose first bytes start a ClientHello,
an HTTP request or a QUIC Initial; only those are read in Python, and only
when a wanted name occurs in their bytes (QUIC's are encrypted: every Initial
is decrypted, vectorized). Memory is bounded: at most MAX_CLAIMS claims per
capture, the rest counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from portmatrix.decode import http, quic, tls
from portmatrix.decode.batch import PacketBatch, RawBatch
from portmatrix.decode.payload import payloads, readable
from portmatrix.decode.transport import TCP, UDP

HOW = ("tls-sni", "http-host", "quic-sni")
"""How a name was learned: tls-sni: the server name of a TLS ClientHello over TCP;
http-host: the Host header of an HTTP/1.x request; quic-sni: the server name of
the ClientHello in a QUIC Initial."""
TLS_SNI, HTTP_HOST, QUIC_SNI = range(3)
MAX_CLAIMS = 1_000_000
READ = 4096  # first payload bytes a reader gets (a ClientHello is under 2 kB)
ACK, SYN_RST = 0x10, 0x06
_QUIC_MIN = quic.MIN_DATAGRAM + 8 + 20  # the smallest frame that may hold a client Initial


@dataclass
class Claims:
    """Names clients gave their destinations, one row per claim (a flow may make
    several), plus how many of each kind of first message were read."""

    src_hi: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    src_lo: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    dst_hi: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    dst_lo: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    sport: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    dport: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    proto: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    how: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    name: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # into `names`
    names: list[str] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)  # first messages found, by HOW
    damaged: dict[str, int] = field(default_factory=dict)  # ... that could not be read
    cut: dict[str, int] = field(default_factory=dict)  # ... that go on past their first
    #  segment (a name after it is not read) or, for QUIC, past the Initials captured
    dropped: int = 0  # claims past MAX_CLAIMS
    # Each column's buffer, the column its start: `add` grows it by doubling.
    _room: dict[str, np.ndarray] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    COLUMNS = ("src_hi", "src_lo", "dst_hi", "dst_lo", "sport", "dport", "proto", "ts", "how")

    def __len__(self) -> int:
        return len(self.ts)

    def add(self, other: Claims) -> None:
        """Take in another capture's (or batch's) claims, names renumbered."""
        for counts, theirs in ((self.seen, other.seen), (self.damaged, other.damaged)):
            for k, v in theirs.items():
                counts[k] = counts.get(k, 0) + v
        for k, v in other.cut.items():
            self.cut[k] = self.cut.get(k, 0) + v
        self.dropped += other.dropped
        room = max(0, MAX_CLAIMS - len(self))
        take = min(room, len(other))
        self.dropped += len(other) - take
        if not take:
            return
        index = {n: i for i, n in enumerate(self.names)}
        for n in other.names:
            if n not in index:
                index[n] = len(self.names)
                self.names.append(n)
        renumber = np.array([index[n] for n in other.names] or [0], np.int32)
        n = len(self)
        for col in self.COLUMNS:
            self._append(col, n, getattr(other, col)[:take])
        self._append("name", n, renumber[other.name[:take]])

    def _append(self, col: str, n: int, theirs: np.ndarray) -> None:
        """Column `col` (n rows) and `theirs` after it, in a buffer that grows by
        doubling (up to MAX_CLAIMS rows): a capture adds claims batch by batch, and
        a copy of all so far per batch would cost the square of the batches."""
        mine = getattr(self, col)
        room = self._room.get(col)
        end = n + len(theirs)
        dtype = np.result_type(mine, theirs)  # as np.concatenate would make it
        if room is None or mine.base is not room or len(room) < end or room.dtype != dtype:
            room = np.empty(max(end, min(MAX_CLAIMS, 2 * end)), dtype)
            room[:n] = mine
            self._room[col] = room
        room[n:end] = theirs
        setattr(self, col, room[:end])

    def __getstate__(self) -> dict:
        """Pickled (to and from worker processes) without the spare room."""
        return {**self.__dict__, "_room": {}}

    def count(self, kind: int, what: str, n: int = 1) -> None:
        if n:
            bucket = getattr(self, what)
            bucket[HOW[kind]] = bucket.get(HOW[kind], 0) + n


def learn(raw: RawBatch, rows: PacketBatch, wanted: frozenset[str]) -> Claims:
    """The claims of the `wanted` hostnames among these decoded rows."""
    out = Claims()
    if not wanted or not len(rows):
        return out
    tcp = (rows.proto == TCP) & ((rows.tcp_flags & (ACK | SYN_RST)) == ACK)
    udp = (rows.proto == UDP) & (rows.wirelen >= _QUIC_MIN)
    chosen = np.flatnonzero(readable(rows) & (tcp | udp))
    if not len(chosen):
        return out
    found = payloads(raw, rows, chosen)
    head = found.head()
    b0 = head >> np.uint64(56)
    # What is read here starts with a TLS handshake record, an HTTP method (capital
    # letters) or a QUIC long header: the other tests run on those payloads alone.
    maybe = (b0 == tls.HANDSHAKE) | ((b0 & np.uint64(0xC0)) == np.uint64(0xC0))
    maybe |= (b0 >= ord("A")) & (b0 <= ord("Z"))
    if not maybe.all():
        keep = np.flatnonzero(maybe)
        found, head, b0, chosen = found.take(keep), head[keep], b0[keep], chosen[keep]
    byte = [(head >> np.uint64(8 * (7 - k))) & np.uint64(0xFF) for k in range(6)]
    is_tcp = rows.proto[chosen] == TCP
    hello = is_tcp & (b0 == tls.HANDSHAKE) & (byte[1] == 3) & (byte[2] <= 4) & (byte[5] == 1)
    request = np.zeros(len(head), bool)
    for method in http.METHODS:
        word = method + b" "
        shift = np.uint64(8 * (8 - len(word)))
        request |= is_tcp & ((head >> shift) == np.uint64(int.from_bytes(word, "big")))
    version = (head >> np.uint64(24)) & np.uint64(0xFFFFFFFF)
    initial = ~is_tcp & ((b0 & np.uint64(0xC0)) == np.uint64(0xC0))
    initial &= (version == np.uint64(quic.V1)) | (version == np.uint64(quic.V2))
    # A hello longer than its segment goes on in the next one, which is not read here.
    longer = hello & ((((head >> np.uint64(24)) & np.uint64(0xFFFF)) + np.uint64(5)) > found.size)
    out.count(TLS_SNI, "cut", int(longer.sum()))
    lowered = [n.encode() for n in wanted]
    picked: list[tuple[int, int, str]] = []  # (row, kind, name) of each claim
    for kind, mask, read in (
        (TLS_SNI, hello, _hello),
        (HTTP_HOST, request, _request),
    ):
        sel = np.flatnonzero(mask)
        out.count(kind, "seen", len(sel))
        for i in sel.tolist():
            data = found.bytes_of(i, READ)
            if not any(n in data.lower() for n in lowered):
                continue
            name, status = read(data)
            if status == tls.DAMAGED:
                out.count(kind, "damaged")
            elif name in wanted:
                picked.append((int(found.rows[i]), kind, name))
    _quic(out, rows, found, np.flatnonzero(initial), wanted, picked)
    _claims(out, rows, picked)
    return out


def _hello(data: bytes) -> tuple[str | None, str]:
    hello = tls.from_records(data)
    return hello.sni, hello.status


def _request(data: bytes) -> tuple[str | None, str]:
    req = http.request(data)
    return req.host, req.status


def _quic(out: Claims, rows: PacketBatch, found, sel: np.ndarray, wanted, picked: list) -> None:
    """Every client Initial of the batch decrypted at once; claims for wanted names
    added to `picked`."""
    if not len(sel):
        return
    packets, clients = [], {}
    for i, r in zip(sel.tolist(), found.rows[sel].tolist(), strict=True):
        data = found.bytes_of(i)
        if not quic.is_initial_start(data[:8]):
            continue  # a Handshake or 0-RTT packet: not what names the server
        src = (int(rows.src_hi[r]), int(rows.src_lo[r]), int(rows.sport[r]))
        dst = (int(rows.dst_hi[r]), int(rows.dst_lo[r]), int(rows.dport[r]))
        # The client sends the first Initial of a connection; the server's answer,
        # under keys of its own, is not read.
        if clients.setdefault(frozenset((src, dst)), src) != src:
            continue
        packets.append(((src, dst), data, r))
    out.count(QUIC_SNI, "seen", len({(k, d[6 : 6 + d[5]]) for k, d, _ in packets}))
    hellos = quic.initials([(k, d) for k, d, _ in packets])
    for item, hello in hellos.items():
        if hello.status == tls.DAMAGED:
            out.count(QUIC_SNI, "damaged")
        elif hello.sni is None:
            out.count(QUIC_SNI, "cut")
        elif hello.sni in wanted:
            picked.append((packets[item][2], QUIC_SNI, hello.sni))


def _claims(out: Claims, rows: PacketBatch, picked: list[tuple[int, int, str]]) -> None:
    """The batch's claims, (row, kind, name) each, as columns made at once (a batch
    may hold thousands: one array append per claim would cost their square)."""
    if not picked:
        return
    at = np.array([r for r, _, _ in picked], np.int64)
    for col in ("src_hi", "src_lo", "dst_hi", "dst_lo", "sport", "dport", "proto", "ts"):
        setattr(out, col, getattr(rows, col)[at].astype(getattr(out, col).dtype))
    out.how = np.array([k for _, k, _ in picked], out.how.dtype)
    out.names = list(dict.fromkeys(n for _, _, n in picked))
    index = {n: i for i, n in enumerate(out.names)}
    out.name = np.array([index[n] for _, _, n in picked], np.int32)
