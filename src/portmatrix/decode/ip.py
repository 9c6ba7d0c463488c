"""IPv4 (options, fragments) and IPv6 (extension header chains, fragments).

`network()` reads the IP header at each position and returns addresses as
IPv6 integers (IPv4-mapped), the transport protocol, where the transport
header starts, and the fragment state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from portmatrix.decode import batch as b
from portmatrix.decode.fields import any_of, be, be16, be32, u8

V4_TAG = np.uint64(0xFFFF << 32)
# IPv6 extension headers whose length is (byte 1 + 1) * 8: hop-by-hop, routing,
# destination options, mobility, HIP, shim6.
EXT_8 = (0, 43, 60, 135, 139, 140)
FRAGMENT, AH = 44, 51
MAX_EXT = b.MAX_EXT  # more extension headers than this: undecodable


@dataclass
class Network:
    status: np.ndarray  # int8: b.IP or an undecodable reason
    src_hi: np.ndarray
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    proto: np.ndarray  # int64
    l4pos: np.ndarray  # int64
    l4end: np.ndarray  # int64: end of the IP payload within what was captured
    frag: np.ndarray  # uint8
    frag_id: np.ndarray  # int64
    frag_off: np.ndarray  # int32: bytes
    frag_len: np.ndarray  # int32: bytes of data the header says this fragment holds


def network(
    data: np.ndarray, pos: np.ndarray, end: np.ndarray, kind: np.ndarray, quoted: bool = False
) -> Network:
    """Decode the IP header at `pos` (kind 4 or 6 per row).

    `quoted`: the header is the one quoted inside an ICMP error, whose length
    fields describe the original datagram, not what follows here.
    """
    n = len(pos)
    out = Network(
        status=np.full(n, b.IP, dtype=np.int8),
        src_hi=np.zeros(n, np.uint64),
        src_lo=np.zeros(n, np.uint64),
        dst_hi=np.zeros(n, np.uint64),
        dst_lo=np.zeros(n, np.uint64),
        proto=np.zeros(n, np.int64),
        l4pos=np.zeros(n, np.int64),
        l4end=end.copy(),
        frag=np.zeros(n, np.uint8),
        frag_id=np.zeros(n, np.int64),
        frag_off=np.zeros(n, np.int32),
        frag_len=np.zeros(n, np.int32),
    )
    version = u8(data, pos) >> 4
    out.status[(pos + 1 > end)] = b.TRUNC_IP
    out.status[(out.status == b.IP) & (version != kind)] = b.BAD_IP_VERSION
    v4 = np.flatnonzero((out.status == b.IP) & (kind == 4))
    if len(v4):
        _ipv4(data, pos[v4], end[v4], out, v4, quoted)
    v6 = np.flatnonzero((out.status == b.IP) & (kind == 6))
    if len(v6):
        _ipv6(data, pos[v6], end[v6], out, v6, quoted)
    return out


def _ipv4(data, pos, end, out: Network, rows, quoted: bool) -> None:
    status = np.full(len(rows), b.IP, dtype=np.int8)
    status[pos + 20 > end] = b.TRUNC_IP
    ihl = (u8(data, pos).astype(np.int64) & 0x0F) * 4
    status[(status == b.IP) & (ihl < 20)] = b.BAD_IP_HEADER
    status[(status == b.IP) & (pos + ihl > end)] = b.TRUNC_IP
    total = be16(data, pos + 2)
    flags = be16(data, pos + 6)
    offset = flags & 0x1FFF
    more = (flags & 0x2000) != 0
    out.status[rows] = status
    out.proto[rows] = u8(data, pos + 9)
    out.src_lo[rows] = be(data, pos + 12, 4) | V4_TAG
    out.dst_lo[rows] = be(data, pos + 16, 4) | V4_TAG
    out.l4pos[rows] = pos + ihl
    if not quoted:
        # A zero total length happens with TCP segmentation offload: trust the capture.
        claimed = np.where(total >= ihl, pos + total, end)
        out.l4end[rows] = np.minimum(end, claimed)
    out.frag[rows] = _state(offset > 0, more)
    pieces = np.flatnonzero(out.frag[rows] != b.NOT_FRAGMENT)  # only fragments need these
    out.frag_id[rows[pieces]] = be16(data, pos[pieces] + 4)
    out.frag_off[rows[pieces]] = offset[pieces] * 8
    out.frag_len[rows[pieces]] = np.maximum(total[pieces] - ihl[pieces], 0)


def _state(later: np.ndarray, more: np.ndarray) -> np.ndarray:
    """NOT, FIRST, LATER or LAST_FRAGMENT from the offset and the more-fragments flag."""
    return np.where(
        later,
        np.where(more, b.LATER_FRAGMENT, b.LAST_FRAGMENT),
        np.where(more, b.FIRST_FRAGMENT, b.NOT_FRAGMENT),
    ).astype(np.uint8)


def _ipv6(data, pos, end, out: Network, rows, quoted: bool) -> None:
    status = np.full(len(rows), b.IP, dtype=np.int8)
    status[pos + 40 > end] = b.TRUNC_IP
    out.src_hi[rows] = be(data, pos + 8, 8)
    out.src_lo[rows] = be(data, pos + 16, 8)
    out.dst_hi[rows] = be(data, pos + 24, 8)
    out.dst_lo[rows] = be(data, pos + 32, 8)
    if not quoted:
        payload = be16(data, pos + 4)
        # Zero payload length: a jumbogram, or offload; trust the capture.
        out.l4end[rows] = np.where(payload > 0, np.minimum(end, pos + 40 + payload), end)
    nh = u8(data, pos + 6).astype(np.int64)
    p = pos + 40
    frag = np.zeros(len(rows), np.uint8)
    frag_id = np.zeros(len(rows), np.int64)
    frag_off = np.zeros(len(rows), np.int32)
    data_at = np.zeros(len(rows), np.int64)  # where a fragment's data starts
    stop = out.l4end[rows]
    live = np.flatnonzero((status == b.IP) & any_of(nh, EXT_8 + (FRAGMENT, AH)))
    for _ in range(MAX_EXT):
        if not len(live):
            break
        h, at = nh[live], p[live]
        short = at + 8 > stop[live]
        status[live[short]] = b.TRUNC_IP
        keep = ~short
        live, h, at = live[keep], h[keep], at[keep]
        is_frag = h == FRAGMENT
        fr = live[is_frag]
        if len(fr):
            field = be16(data, at[is_frag] + 2)
            frag[fr] = np.maximum(frag[fr], _state((field >> 3) > 0, (field & 1) != 0))
            frag_id[fr] = be32(data, at[is_frag] + 4)
            frag_off[fr] = (field >> 3) * 8
            data_at[fr] = at[is_frag] + 8
        size = np.where(
            is_frag,
            8,
            np.where(
                h == AH,
                (u8(data, at + 1).astype(np.int64) + 2) * 4,
                (u8(data, at + 1).astype(np.int64) + 1) * 8,
            ),
        )
        nh[live] = u8(data, at)
        p[live] = at + size
        # A later fragment's payload is not a header: stop walking there.
        go_on = any_of(nh[live], EXT_8 + (FRAGMENT, AH)) & (frag[live] < b.LATER_FRAGMENT)
        live = live[go_on]
    status[live] = b.TOO_MANY_EXT  # headers left after MAX_EXT of them
    status[p > stop] = np.where(status[p > stop] == b.IP, b.TRUNC_IP, status[p > stop])
    out.status[rows] = status
    out.proto[rows] = nh
    out.l4pos[rows] = p
    out.frag[rows] = frag
    out.frag_id[rows] = frag_id
    out.frag_off[rows] = frag_off
    if not quoted:  # the datagram's payload, from the fragment header's end
        pieces = frag != b.NOT_FRAGMENT
        payload_end = pos[pieces] + 40 + be16(data, pos[pieces] + 4)
        out.frag_len[rows[pieces]] = np.maximum(payload_end - data_at[pieces], 0)
