"""The decoder's fast path: common frames decoded in one C pass.

Ethernet, Linux cooked or raw IP; a few VLAN tags; IPv4 without fragmentation
or IPv6 without extension headers; TCP with its flags, UDP that is not a
tunnel, or ICMP that is not an error; and non-IP frames (ARP, LLDP, ...), which
are only counted. That is nearly every frame of a real capture, and the
compiled `_common` loop reads each header once, where the numpy decoder reads
every field in a separate pass over the batch. Every other frame is left to the
numpy decoder, which stays the reference: the tests check both give the same.
"""

from __future__ import annotations

import numpy as np

from portmatrix.decode.batch import PacketBatch, RawBatch

try:
    from portmatrix.decode import _common
except ImportError:  # built without a C compiler
    _common = None

# frame index, vlan, src hi/lo, dst hi/lo, proto, sport, dport, tcp flags and seq,
# icmp type, code and the query type an ICMP flow pairs on; then where the payload
# is (PacketBatch.located)
COLS = 18
ROW, NON_IP = 1, 2  # what became of a frame (0: left to numpy)


def available() -> bool:
    return _common is not None


def split(raw: RawBatch) -> tuple[PacketBatch, dict[int, int], np.ndarray]:
    """(rows of the common frames, non-IP frames per ethertype, indices of the
    frames left to the numpy decoder)."""
    n = len(raw)
    out = np.empty((COLS, n), np.int64)
    fate = np.empty(n, np.int8)
    etype = np.empty(n, np.int64)
    k = _common.common(
        raw.data,
        np.ascontiguousarray(raw.offset, np.int64),
        np.ascontiguousarray(raw.caplen, np.int64),
        np.ascontiguousarray(raw.linktype, np.int32),
        out,
        fate,
        etype,
    )
    idx, vlan, *addr, proto, sport, dport, flags, seq, itype, icode, query = out[:14, :k]
    src_hi, src_lo, dst_hi, dst_lo = (a.view(np.uint64) for a in addr)
    rows = PacketBatch(
        frame=raw.frame[idx],
        ts=raw.ts[idx],
        iface=raw.iface[idx],
        wirelen=raw.wirelen[idx],
        vlan=vlan.astype(np.int32),
        encap=np.zeros(k, np.uint8),
        src_hi=src_hi,
        src_lo=src_lo,
        dst_hi=dst_hi,
        dst_lo=dst_lo,
        proto=proto,
        sport=sport,
        dport=dport,
        tcp_flags=flags,
        tcp_seq=seq,
        icmp_type=itype,
        icmp_code=icode,
        icmp_req=query,
        kind=np.zeros(k, np.uint8),
        frag=np.zeros(k, np.uint8),
        frag_id=np.zeros(k, np.int64),
        frag_off=np.zeros(k, np.int32),
        frag_len=np.zeros(k, np.int32),
        located=out[14:, :k].T.copy(),
    )
    non_ip = {}
    if k < n:
        types, counts = np.unique(etype[fate == NON_IP], return_counts=True)
        non_ip = dict(zip(types.tolist(), counts.tolist(), strict=True))
    return rows, non_ip, np.flatnonzero(fate == 0)
