"""Where the application payload of some packet rows is, for the readers that
look at first bytes (names from TLS, HTTP and QUIC; application labels).

The compiled decoder notes where each row it decodes has its payload, with
the first bytes, while the headers are in cache (`PacketBatch.located`); the
other chosen rows' outer headers are decoded again by the same vectorized
functions as decoding, on those rows instead of the batch (the reference: a
test checks both ways agree on every row). Rows inside
tunnels, ICMP errors and later IP fragments are left out (their payload is not
where these headers say); the callers count what they leave out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from portmatrix.decode import batch as b
from portmatrix.decode import ip, link
from portmatrix.decode.batch import PacketBatch, RawBatch
from portmatrix.decode.fields import be, u8
from portmatrix.decode.transport import TCP, UDP

VLAN, IPV4, IPV6 = 0x8100, 0x0800, 0x86DD
HEAD = 8  # first payload bytes every row gets as one big-endian integer (`Payloads.head`)


@dataclass
class Payloads:
    """Payload of the chosen rows: `data[start[i]:stop[i]]` (stop - start = 0: none)."""

    rows: np.ndarray  # indices into the PacketBatch
    start: np.ndarray  # int64, into `data`
    stop: np.ndarray  # int64
    data: np.ndarray  # the raw batch's buffer
    transport: np.ndarray | None = None  # int64: where the TCP or UDP header starts
    first: np.ndarray | None = None  # uint64: `head()`, when already read

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def size(self) -> np.ndarray:
        return self.stop - self.start

    def head(self) -> np.ndarray:
        """The first HEAD bytes of each payload as one uint64, big-endian, zero-padded
        past its end: first-bytes tests are comparisons of whole columns."""
        if self.first is not None:
            return self.first
        size = np.clip(self.stop - self.start, 0, HEAD).astype(np.uint64)
        value = be(self.data, self.start, HEAD)
        near_end = np.flatnonzero(self.start + HEAD > len(self.data))
        for i in near_end.tolist():  # the last bytes of the buffer: read them one by one
            tail = self.data[self.start[i] : self.start[i] + HEAD].tobytes()
            value[i] = int.from_bytes(tail.ljust(HEAD, b"\0"), "big")
        keep = np.where(
            size == 0, np.uint64(0), ~np.uint64(0) << ((HEAD - size) * np.uint64(8) % np.uint64(64))
        )
        return value & keep

    def bytes_of(self, i: int, limit: int | None = None) -> bytes:
        """The payload of the i-th chosen row (at most `limit` bytes)."""
        start, stop = int(self.start[i]), int(self.stop[i])
        if limit is not None:
            stop = min(stop, start + limit)
        return self.data[start:stop].tobytes()

    def take(self, index: np.ndarray) -> Payloads:
        transport = None if self.transport is None else self.transport[index]
        first = None if self.first is None else self.first[index]
        return Payloads(
            self.rows[index], self.start[index], self.stop[index], self.data, transport, first
        )


def readable(rows: PacketBatch) -> np.ndarray:
    """Rows whose payload `payloads` can find: TCP or UDP packets, outside tunnels,
    not later fragments, not ICMP errors."""
    return (
        ((rows.proto == TCP) | (rows.proto == UDP))
        & (rows.encap == 0)
        & (rows.kind == b.PACKET)
        & (rows.frag < b.LATER_FRAGMENT)
    )


def payloads(
    raw: RawBatch, rows: PacketBatch, chosen: np.ndarray, compiled: bool = True
) -> Payloads:
    """The payload of the `chosen` rows (indices; each must be `readable`).

    Ethernet frames with IPv4, or IPv6 without extension headers, untagged or
    under one 802.1Q tag — nearly every frame of a span port — were located by the
    compiled decoder (without it, or with `compiled=False`, they are read in a
    few gathers); the others go through the link and IP decoders again."""
    chosen = np.asarray(chosen, np.int64)
    proto = rows.proto[chosen].astype(np.int64)
    if not compiled or rows.located is None:
        idx = np.searchsorted(raw.frame, rows.frame[chosen])
        l4, start, stop = _located(raw, idx, proto)
        return Payloads(chosen, start, stop, raw.data, l4)
    located = rows.located[chosen]  # one gather of whole rows; the columns are views
    l4, start, stop, first = located[:, 0], located[:, 1], located[:, 2], located[:, 3]
    first = first.view(np.uint64)
    rest = np.flatnonzero(l4 < 0)  # rows the compiled decoder did not decode
    if len(rest):
        idx = np.searchsorted(raw.frame, rows.frame[chosen[rest]])
        l4[rest], start[rest], stop[rest] = _located(raw, idx, proto[rest])
        first[rest] = Payloads(rest, start[rest], stop[rest], raw.data).head()
    return Payloads(chosen, start, stop, raw.data, l4, first)


def _located(raw: RawBatch, idx: np.ndarray, proto: np.ndarray):
    """(transport header, payload start, payload stop) of the frames `idx`, whose
    decoded rows have protocol `proto`: the vectorized reference."""
    data, offset = raw.data, raw.offset[idx]
    end = offset + raw.caplen[idx]
    l4, l4end, simple = _simple(data, offset, end, raw.linktype[idx], proto)
    other = np.flatnonzero(~simple)
    if len(other):
        l3pos, kind, *_ = link.decode(
            data, offset[other], end[other] - offset[other], raw.linktype[idx[other]]
        )
        net = ip.network(data, l3pos, end[other], kind.astype(np.int64))
        l4[other] = np.where(net.status == b.IP, net.l4pos, end[other])
        l4end[other] = np.where(net.status == b.IP, net.l4end, end[other])
    tcp = proto == TCP
    words = (u8(data, l4 + 12) >> 4).astype(np.int64)
    start = np.where(tcp, l4 + 4 * words, l4 + 8)
    bad = (tcp & (words < 5)) | (start > l4end)
    start = np.where(bad, l4end, start)
    return l4, start, l4end


def _simple(data, offset, end, linktype, proto):
    """(l4 position, end of the IP payload, which rows were simple) of the common
    frames; the other rows' positions are left to the general decoders. Three
    8-byte reads per row (the frame at its Ethernet type, the IP header's first
    16 bytes): reads over a large buffer miss the cache, their number is the cost."""
    eight = np.uint64(8)
    link_word = be(data, offset + 12, 8)
    etype = (link_word >> np.uint64(48)).astype(np.int64)
    tagged = etype == VLAN
    etype = np.where(tagged, (link_word >> np.uint64(16)) & np.uint64(0xFFFF), etype)
    l3 = np.where(tagged, offset + 18, offset + 14)
    w0, w1 = be(data, l3, 8), be(data, l3 + 8, 8)
    first = (w0 >> np.uint64(56)).astype(np.int64)
    ihl = first & 0x0F
    v4 = (etype == IPV4) & (first >> 4 == 4) & (ihl >= 5)
    v4 &= ((w1 >> np.uint64(48)) & np.uint64(0xFF)).astype(np.int64) == proto  # byte 9
    v6 = (etype == IPV6) & (first >> 4 == 6)
    v6 &= ((w0 >> eight) & np.uint64(0xFF)).astype(np.int64) == proto  # byte 6: next header
    simple = (linktype == link.ETHERNET) & (v4 | v6) & (l3 + 40 <= end)
    simple &= offset + 12 + 8 <= end
    l4 = np.where(v4, l3 + 4 * ihl, l3 + 40)
    total = ((w0 >> np.uint64(32)) & np.uint64(0xFFFF)).astype(np.int64)  # bytes 2-3
    payload_v6 = ((w0 >> np.uint64(16)) & np.uint64(0xFFFF)).astype(np.int64)  # bytes 4-5
    # As the IP decoder: a zero IPv6 payload length (a jumbogram, segmentation
    # offload) leaves the end to the capture.
    claimed = np.where(v4, l3 + total, np.where(payload_v6 > 0, l3 + 40 + payload_v6, end))
    l4end = np.minimum(end, claimed)
    simple &= l4 <= l4end
    return l4, l4end, simple
