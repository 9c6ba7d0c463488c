"""Packets cut into flow *records*: the first step of flow building.

A flow is keyed by protocol and its two endpoints, in a canonical order (side
A is the smaller (address, port)), so both directions of a connection land in
one flow. The VLAN id is not part of the key: one connection mirrored from two
tagged links is one flow, as in tshark's conversation table.

Packets are cut into records at every pure SYN; whether two consecutive
records of a key belong to one flow is decided by the table (`table.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from portmatrix.decode import batch as b
from portmatrix.decode.batch import PacketBatch
from portmatrix.decode.fields import any_of
from portmatrix.decode.keyhash import mix
from portmatrix.decode.transport import ICMP, ICMP_QUERY_REPLY, ICMPV6, TCP
from portmatrix.flows.model import FRAMES

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10  # TCP flags
UNKNOWN = -1

# Column name -> dtype of a flow record. `_a`/`_b` are the canonical sides. The
# order is the flow table's record layout (flows/store.py): widest first, so an
# aligned struct has no holes; the compiled table (flows/_table.c) declares the
# same struct, and a test keeps the two equal.
RECORD = {
    "hash": np.uint64,
    "a_hi": np.uint64,
    "a_lo": np.uint64,
    "b_hi": np.uint64,
    "b_lo": np.uint64,
    "first_ts": np.int64,
    "last_ts": np.int64,
    "pkts_a": np.int64,
    "pkts_b": np.int64,
    "bytes_a": np.int64,
    "bytes_b": np.int64,
    "isn": np.int64,  # sequence number of the record's last pure SYN, -1 none
    "isn0": np.int64,  # sequence number of the pure SYN the record starts with, -1 none
    "frame0": np.int64,
    "frame1": np.int64,
    "frame2": np.int64,
    "a_port": np.int32,
    "b_port": np.int32,
    "iface": np.int32,
    "file0": np.int32,
    "file1": np.int32,
    "file2": np.int32,
    "icmp_req": np.int16,
    "flags_a": np.int16,
    "flags_b": np.int16,  # TCP flags seen, OR-ed, per sender
    "err_type": np.int16,
    "err_code": np.int16,  # first ICMP error tied to the flow
    "vlan_lo": np.int16,
    "vlan_hi": np.int16,
    "proto": np.uint8,
    "encap": np.uint8,
    "first_dir": np.int8,  # sender of the first packet: 0 = A, 1 = B, -1 none
    "open_dir": np.int8,  # sender of the first opening (pure SYN, ICMP request)
    "answer_dir": np.int8,  # sender of the first answer (SYN-ACK, ICMP reply)
    "err_dir": np.int8,  # sender of the packet that ICMP error answers
    "syn_start": np.bool_,
    "has_syn": np.bool_,
    "cals": np.bool_,  # a FIN or RST came after the record's last pure SYN
    "tentative": np.bool_,  # the boundary before this record is not decided yet
    # Order of records: later records of a key have larger seq. Not stored: in a
    # table it is the record's place (FlowTable.rec).
    "seq": np.int64,
}
KEY = ("a_hi", "a_lo", "b_hi", "b_lo", "proto", "a_port", "b_port", "icmp_req")


class Records(dict):
    """Columns of flow records (a dict name -> array, all of one length)."""

    def __len__(self) -> int:
        return len(self["hash"])

    def take(self, index, columns=None) -> Records:
        return Records({k: self[k][index] for k in columns or self})

    @staticmethod
    def empty() -> Records:
        return Records({k: np.zeros(0, dtype=t) for k, t in RECORD.items()})


class _Sorted:
    """The columns of a packet batch that flow building reads, in key order, taken
    on first use."""

    def __init__(self, rows: PacketBatch, order: np.ndarray) -> None:
        self._rows = rows
        self._order = order

    def __getattr__(self, name: str) -> np.ndarray:
        value = getattr(self._rows, name)[self._order]
        setattr(self, name, value)
        return value


def _first_where(mask: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
    """Per run (runs start at `starts`), the index of the first True row, or n."""
    idx = np.where(mask, np.arange(n), n)
    return np.minimum.reduceat(idx, starts) if n else idx


def _dir_of(first: np.ndarray, direction: np.ndarray) -> np.ndarray:
    padded = np.append(direction, -1).astype(np.int8)
    return padded[first]


def flow_key(s_hi, s_lo, sport, d_hi, d_lo, dport, proto, icmp_req):
    """The flow key of packets (or flows) given by their two ends, whichever way round:
    (hash, whether the ends were swapped into canonical order, the canonical
    a_hi, a_lo, a_port, b_hi, b_lo, b_port). Side A is the smaller (address, port)."""
    swap = (s_hi > d_hi) | ((s_hi == d_hi) & ((s_lo > d_lo) | ((s_lo == d_lo) & (sport > dport))))
    a_hi, b_hi = np.where(swap, d_hi, s_hi), np.where(swap, s_hi, d_hi)
    a_lo, b_lo = np.where(swap, d_lo, s_lo), np.where(swap, s_lo, d_lo)
    a_port, b_port = np.where(swap, dport, sport), np.where(swap, sport, dport)
    word = (
        (np.asarray(proto).astype(np.uint64) << np.uint64(48))
        | (a_port.astype(np.uint64) << np.uint64(32))
        | (b_port.astype(np.uint64) << np.uint64(16))
        | (np.asarray(icmp_req) + 1).astype(np.uint64)
    )
    return mix(a_hi, a_lo, b_hi, b_lo, word), swap, (a_hi, a_lo, a_port, b_hi, b_lo, b_port)


def packet_key(rows: PacketBatch):
    """`flow_key` of decoded packets: each from its source to its destination. A
    packet whose two ends are one (a host pinging itself) went from side B when
    it is an ICMP answer: nothing else tells its way."""
    h, swap, ends = flow_key(
        rows.src_hi,
        rows.src_lo,
        rows.sport,
        rows.dst_hi,
        rows.dst_lo,
        rows.dport,
        rows.proto,
        rows.icmp_req,
    )
    same = (rows.src_hi == rows.dst_hi) & (rows.src_lo == rows.dst_lo) & (rows.sport == rows.dport)
    if same.any():
        swap = swap | (same & (rows.kind == b.PACKET) & _answers(rows.proto, rows.icmp_type))
    return h, swap, ends


def _answers(proto: np.ndarray, icmp_type: np.ndarray) -> np.ndarray:
    """ICMP replies (echo reply, timestamp reply, ...): ICMP_QUERY_REPLY's values."""
    out = np.zeros(len(proto), bool)
    for p, pairs in ICMP_QUERY_REPLY.items():
        out |= (proto == p) & any_of(icmp_type, list(pairs.values()))
    return out


@dataclass
class _Cut:
    """Where records start in key-sorted rows, and what each segment says.

    Segments start at each key and at each pure SYN; records are runs of
    segments (see `_cut`)."""

    starts: np.ndarray  # row of each record's first packet
    rec_seg: np.ndarray  # segment each record starts with
    boundary: np.ndarray  # per segment: a record starts here
    seg_close: np.ndarray  # per segment: a FIN or RST in it
    seg_isn: np.ndarray  # per segment: the sequence number of its SYN, -1 none
    tentative: np.ndarray  # per segment: the boundary before it is not decided yet


def records_from_rows(rows: PacketBatch, file_id: int = 0) -> Records:
    """Cut decoded rows into flow records (see the module docstring)."""
    if not len(rows):
        return Records.empty()
    order, h, key_cols, new_key, d = _sort_by_key(rows)
    r = _Sorted(rows, order)
    proto = key_cols["proto"]
    pkt = r.kind == b.PACKET
    tcp = (proto == TCP) & pkt
    flags = np.where(tcp, r.tcp_flags, 0)
    pure_syn = tcp & ((flags & (SYN | ACK)) == SYN)
    close = tcp & ((flags & (FIN | RST)) != 0)
    opening, answer = _openings(
        rows, order, proto, pkt, pure_syn, tcp & ((flags & (SYN | ACK)) == (SYN | ACK))
    )
    cut = _cut(rows, order, new_key, pure_syn, close)
    starts = cut.starts
    n, m = len(rows), len(starts)
    out = Records()
    out["hash"] = h[starts]
    for k, v in key_cols.items():
        out[k] = v[starts].astype(RECORD[k])
    out["seq"] = np.arange(m, dtype=np.int64)
    out["first_ts"] = np.minimum.reduceat(r.ts, starts)
    out["last_ts"] = np.maximum.reduceat(r.ts, starts)
    # Per side: totals, and side B's share (d is 1 for B's packets).
    # A fragmented datagram is one packet (its first fragment); the rest add bytes.
    count = (pkt & (r.frag != b.JOINED_FRAGMENT)).astype(np.int64)
    size = r.wirelen * pkt.astype(np.int64)  # every fragment's bytes
    from_b = d.astype(np.int64)
    out["pkts_b"] = np.add.reduceat(count * from_b, starts)
    out["pkts_a"] = np.add.reduceat(count, starts) - out["pkts_b"]
    out["bytes_b"] = np.add.reduceat(size * from_b, starts)
    out["bytes_a"] = np.add.reduceat(size, starts) - out["bytes_b"]
    out["flags_a"] = np.bitwise_or.reduceat(flags * (1 - from_b), starts).astype(np.int16)
    out["flags_b"] = np.bitwise_or.reduceat(flags * from_b, starts).astype(np.int16)
    out["first_dir"] = _dir_of(_first_where(pkt, starts, n), d)
    out["open_dir"] = _dir_of(_first_where(opening, starts, n), d)
    out["answer_dir"] = _dir_of(_first_where(answer, starts, n), d)
    err_first = _first_where(~pkt, starts, n)  # the first ICMP error row, or n
    out["err_dir"] = _dir_of(err_first, d)
    at = np.append(order, -1)[err_first]
    out["err_type"] = np.where(at >= 0, rows.icmp_type[at], -1).astype(np.int16)
    out["err_code"] = np.where(at >= 0, rows.icmp_code[at], -1).astype(np.int16)
    _add_connection_state(out, cut, pure_syn, close)
    vlan = r.vlan
    out["vlan_lo"] = np.minimum.reduceat(np.where(vlan >= 0, vlan, 1 << 20), starts)
    out["vlan_lo"][out["vlan_lo"] == 1 << 20] = -1
    out["vlan_hi"] = np.maximum.reduceat(vlan, starts).astype(np.int32)
    out["encap"] = np.maximum.reduceat(r.encap, starts)
    out["iface"] = rows.iface[order[starts]].astype(np.int32)
    _add_frames(out, rows, order, starts, file_id)
    for k, t in RECORD.items():
        out[k] = out[k].astype(t, copy=False)
    return out


def _sort_by_key(rows: PacketBatch):
    """(order, hashes, key columns, new-key marks, direction) of the rows sorted by
    flow key: by hash, rows of a key staying in file order; by the full key where
    two keys' 64-bit hashes collide."""
    n = len(rows)
    h, swap, (a_hi, a_lo, a_port, b_hi, b_lo, b_port) = packet_key(rows)
    order = np.argsort(h, kind="stable")  # rows stay in file order within a key
    h = h[order]
    key_cols = {
        "a_hi": a_hi[order],
        "a_lo": a_lo[order],
        "b_hi": b_hi[order],
        "b_lo": b_lo[order],
        "proto": rows.proto[order],
        "a_port": a_port[order],
        "b_port": b_port[order],
        "icmp_req": rows.icmp_req[order],
    }
    new_key = np.r_[True, h[1:] != h[:-1]]
    same_hash_diff_key = np.zeros(n, bool)
    for col in key_cols.values():
        same_hash_diff_key[1:] |= (col[1:] != col[:-1]) & ~new_key[1:]
    if same_hash_diff_key.any():  # a 64-bit collision: fall back to a full sort
        order2 = np.lexsort([key_cols[k] for k in reversed(KEY)])
        order = order[order2]
        h = h[order2]
        key_cols = {k: v[order2] for k, v in key_cols.items()}
        new_key = np.r_[True, np.zeros(n - 1, bool)]
        for col in key_cols.values():
            new_key[1:] |= col[1:] != col[:-1]
    return order, h, key_cols, new_key, swap.astype(np.int8)[order]  # 0: sent by side A


def _openings(rows, order, proto, pkt, pure_syn, synack):
    """Per sorted row: does it open its flow (pure SYN, ICMP query), does it answer
    (SYN-ACK, ICMP reply)?"""
    icmp = np.flatnonzero(any_of(proto, (ICMP, ICMPV6)) & pkt)
    if not len(icmp):
        return pure_syn, synack
    opening, answer = pure_syn.copy(), synack.copy()
    itype = rows.icmp_type[order[icmp]]
    for p, pairs in ICMP_QUERY_REPLY.items():
        mine = proto[icmp] == p
        opening[icmp[mine & any_of(itype, list(pairs))]] = True
        answer[icmp[mine & any_of(itype, list(pairs.values()))]] = True
    return opening, answer


def _cut(rows, order, new_key, pure_syn, close) -> _Cut:
    """Segments start at each key and at each pure SYN; a record boundary before
    segment i: a new key; or the previous segment closed; or the previous segment
    is headless (no SYN): then the boundary is tentative, even when it closed:
    the headless segment continues a record of an earlier table, and only that
    record's last SYN says whether this SYN repeats it."""
    seg_idx = np.flatnonzero(new_key | pure_syn)
    seg_syn = pure_syn[seg_idx]
    seg_close = np.logical_or.reduceat(close, seg_idx)
    seg_new_key = new_key[seg_idx]
    seg_isn = np.where(seg_syn, rows.tcp_seq[order[seg_idx]], -1)
    prev_syn = np.r_[False, seg_syn[:-1]]
    # A closed connection is only left for a SYN with a new initial sequence number.
    prev_close = np.r_[False, seg_close[:-1] & (seg_isn[1:] != seg_isn[:-1])]
    boundary = seg_new_key | prev_close | ~prev_syn
    tentative = ~seg_new_key & ~prev_syn
    rec_seg = np.flatnonzero(boundary)
    return _Cut(seg_idx[rec_seg], rec_seg, boundary, seg_close, seg_isn, tentative)


def _add_connection_state(out: Records, cut: _Cut, pure_syn, close) -> None:
    """SYN and close state per record, which the table's merge decides boundaries by."""
    starts = cut.starts
    out["syn_start"] = pure_syn[starts]
    out["has_syn"] = np.logical_or.reduceat(pure_syn, starts)
    # Close after the last pure SYN of the record: the close flag of its last segment,
    # or, for a record without SYN, any close at all.
    seg_rec = np.cumsum(cut.boundary) - 1
    last_seg = np.r_[np.flatnonzero(np.diff(seg_rec)), len(seg_rec) - 1]
    out["cals"] = np.where(
        out["has_syn"], cut.seg_close[last_seg], np.logical_or.reduceat(close, starts)
    )
    out["tentative"] = cut.tentative[cut.rec_seg]
    out["isn"] = cut.seg_isn[last_seg]
    out["isn0"] = cut.seg_isn[cut.rec_seg]


def _add_frames(out: Records, rows: PacketBatch, order, starts, file_id: int) -> None:
    """The first FRAMES frames of each record (file and frame number), for evidence."""
    n, m = len(rows), len(starts)
    is_start = np.zeros(n, bool)
    is_start[starts] = True
    rec_of_row = np.cumsum(is_start) - 1
    for i in range(FRAMES):
        at = np.minimum(starts + i, n - 1)
        valid = (starts + i < n) & (rec_of_row[at] == np.arange(m))
        out[f"frame{i}"] = np.where(valid, rows.frame[order[at]], -1)
        out[f"file{i}"] = np.where(valid, file_id, -1).astype(np.int32)
