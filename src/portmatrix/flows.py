"""The flow table: bidirectional flows built from packet batches, mergeable.

A flow is keyed by protocol and its two endpoints, in a canonical order (side
A is the smaller (address, port)), so both directions of a connection land in
one flow. The VLAN id is not part of the key: one connection mirrored from two
tagged links is one flow, as in tshark's conversation table.

A new pure SYN after a closed (FIN or RST) connection on the same 5-tuple
starts a new flow, unless it repeats the closed connection's initial sequence
number (a retransmission, or a capture that holds the same packets twice),
as tshark's stream tracking does. Packets are cut into *records* at every pure SYN; two
consecutive records of a key belong to one flow unless the earlier one closed
after its last SYN. Whether the first record of a key in a table closed is
sometimes unknown (it started mid-stream, before anything this table saw):
such boundaries stay *tentative* until a merge with the earlier table or
`finish()` decides them. This makes `merge` exact and associative, so batches,
files and workers combine in any grouping with the same result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from portmatrix.decode import batch as b
from portmatrix.decode.batch import PacketBatch
from portmatrix.decode.fields import any_of
from portmatrix.decode.transport import ICMP, ICMP_QUERY_REPLY, ICMPV6, TCP
from portmatrix.hashing import mix
from portmatrix.reassembly import FragmentPorts

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
UNKNOWN = -1

# Column name -> dtype of a flow record. `_a`/`_b` are the canonical sides.
RECORD = {
    "hash": np.uint64,
    "a_hi": np.uint64,
    "a_lo": np.uint64,
    "b_hi": np.uint64,
    "b_lo": np.uint64,
    "proto": np.int16,
    "a_port": np.int32,
    "b_port": np.int32,
    "icmp_req": np.int16,
    "seq": np.int64,  # order of records: later records of a key have larger seq
    "first_ts": np.int64,
    "last_ts": np.int64,
    "pkts_a": np.int64,
    "pkts_b": np.int64,
    "bytes_a": np.int64,
    "bytes_b": np.int64,
    "flags_a": np.int16,
    "flags_b": np.int16,  # TCP flags seen, OR-ed, per sender
    "first_dir": np.int8,  # sender of the first packet: 0 = A, 1 = B, -1 none
    "open_dir": np.int8,  # sender of the first opening (pure SYN, ICMP request)
    "answer_dir": np.int8,  # sender of the first answer (SYN-ACK, ICMP reply)
    "err_type": np.int16,
    "err_code": np.int16,  # first ICMP error tied to the flow
    "err_dir": np.int8,  # sender of the packet that ICMP error answers
    "syn_start": np.bool_,
    "has_syn": np.bool_,
    "cals": np.bool_,  # a FIN or RST came after the record's last pure SYN
    "isn": np.int64,  # sequence number of the record's last pure SYN, -1 none
    "isn0": np.int64,  # sequence number of the pure SYN the record starts with, -1 none
    "tentative": np.bool_,  # the boundary before this record is not decided yet
    "vlan_lo": np.int32,
    "vlan_hi": np.int32,
    "encap": np.uint8,
    "iface": np.int32,
    "frame0": np.int64,
    "frame1": np.int64,
    "frame2": np.int64,
    "file0": np.int32,
    "file1": np.int32,
    "file2": np.int32,
}
KEY = ("a_hi", "a_lo", "b_hi", "b_lo", "proto", "a_port", "b_port", "icmp_req")
FRAMES = 3


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
    """`flow_key` of decoded packets: each from its source to its destination."""
    return flow_key(
        rows.src_hi,
        rows.src_lo,
        rows.sport,
        rows.dst_hi,
        rows.dst_lo,
        rows.dport,
        rows.proto,
        rows.icmp_req,
    )


def records_from_rows(rows: PacketBatch, file_id: int = 0) -> Records:
    """Cut decoded rows into flow records (see the module docstring)."""
    n = len(rows)
    if not n:
        return Records.empty()
    icmp_req = rows.icmp_req
    h, swap, (a_hi, a_lo, a_port, b_hi, b_lo, b_port) = packet_key(rows)
    direction = swap.astype(np.int8)  # 0: sent by side A
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
        "icmp_req": icmp_req[order],
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

    r = _Sorted(rows, order)
    d = direction[order]
    proto = key_cols["proto"]
    pkt = r.kind == b.PACKET
    flags = r.tcp_flags
    tcp = (proto == TCP) & pkt
    pure_syn = tcp & ((flags & (SYN | ACK)) == SYN)
    synack = tcp & ((flags & (SYN | ACK)) == (SYN | ACK))
    close = tcp & ((flags & (FIN | RST)) != 0)
    opening, answer = pure_syn, synack
    icmp = np.flatnonzero(any_of(proto, (ICMP, ICMPV6)) & pkt)
    if len(icmp):  # ICMP queries open, their replies answer
        opening, answer = pure_syn.copy(), synack.copy()
        itype = rows.icmp_type[order[icmp]]
        for p, pairs in ICMP_QUERY_REPLY.items():
            mine = proto[icmp] == p
            opening[icmp[mine & any_of(itype, list(pairs))]] = True
            answer[icmp[mine & any_of(itype, list(pairs.values()))]] = True

    # Segments start at each key and at each pure SYN.
    seg_start = new_key | pure_syn
    seg_idx = np.flatnonzero(seg_start)
    seg_syn = pure_syn[seg_idx]
    seg_close = np.logical_or.reduceat(close, seg_idx)
    seg_new_key = new_key[seg_idx]
    # A record boundary before segment i: a new key; or the previous segment closed;
    # or the previous segment is headless (no SYN): then the boundary is tentative,
    # even when it closed: the headless segment continues a record of an earlier
    # table, and only that record's last SYN says whether this SYN repeats it.
    seg_isn = np.where(seg_syn, rows.tcp_seq[order[seg_idx]], -1)
    prev_syn = np.r_[False, seg_syn[:-1]]
    # A closed connection is only left for a SYN with a new initial sequence number.
    prev_close = np.r_[False, seg_close[:-1] & (seg_isn[1:] != seg_isn[:-1])]
    boundary = seg_new_key | prev_close | ~prev_syn
    tentative = ~seg_new_key & ~prev_syn
    rec_seg = np.flatnonzero(boundary)
    starts = seg_idx[rec_seg]
    m = len(starts)
    is_start = np.zeros(n, bool)
    is_start[starts] = True
    rec_of_row = np.cumsum(is_start) - 1

    out = Records()
    out["hash"] = h[starts]
    for k, v in key_cols.items():
        out[k] = v[starts].astype(RECORD[k])
    out["seq"] = np.arange(m, dtype=np.int64)
    ts = r.ts
    out["first_ts"] = np.minimum.reduceat(ts, starts)
    out["last_ts"] = np.maximum.reduceat(ts, starts)
    # Per side: totals, and side B's share (d is 1 for B's packets).
    count = pkt.astype(np.int64)
    size = r.wirelen * count
    from_b = d.astype(np.int64)
    out["pkts_b"] = np.add.reduceat(count * from_b, starts)
    out["pkts_a"] = np.add.reduceat(count, starts) - out["pkts_b"]
    out["bytes_b"] = np.add.reduceat(size * from_b, starts)
    out["bytes_a"] = np.add.reduceat(size, starts) - out["bytes_b"]
    tcp_flags = np.where(tcp, flags, 0)
    out["flags_a"] = np.bitwise_or.reduceat(tcp_flags * (1 - from_b), starts).astype(np.int16)
    out["flags_b"] = np.bitwise_or.reduceat(tcp_flags * from_b, starts).astype(np.int16)
    out["first_dir"] = _dir_of(_first_where(pkt, starts, n), d)
    out["open_dir"] = _dir_of(_first_where(opening, starts, n), d)
    out["answer_dir"] = _dir_of(_first_where(answer, starts, n), d)
    err_first = _first_where(~pkt, starts, n)  # the first ICMP error row, or n
    out["err_dir"] = _dir_of(err_first, d)
    at = np.append(order, -1)[err_first]
    out["err_type"] = np.where(at >= 0, rows.icmp_type[at], -1).astype(np.int16)
    out["err_code"] = np.where(at >= 0, rows.icmp_code[at], -1).astype(np.int16)
    out["syn_start"] = pure_syn[starts]
    out["has_syn"] = np.logical_or.reduceat(pure_syn, starts)
    # Close after the last pure SYN of the record: the close flag of its last segment,
    # or, for a record without SYN, any close at all.
    seg_rec = np.cumsum(boundary) - 1
    last_seg = np.r_[np.flatnonzero(np.diff(seg_rec)), len(seg_rec) - 1]
    out["cals"] = np.where(
        out["has_syn"], seg_close[last_seg], np.logical_or.reduceat(close, starts)
    )
    out["tentative"] = tentative[rec_seg]
    out["isn"] = seg_isn[last_seg]
    out["isn0"] = seg_isn[rec_seg]
    vlan = r.vlan
    out["vlan_lo"] = np.minimum.reduceat(np.where(vlan >= 0, vlan, 1 << 20), starts)
    out["vlan_lo"][out["vlan_lo"] == 1 << 20] = -1
    out["vlan_hi"] = np.maximum.reduceat(vlan, starts).astype(np.int32)
    out["encap"] = np.maximum.reduceat(r.encap, starts)
    out["iface"] = rows.iface[order[starts]].astype(np.int32)
    for i in range(FRAMES):
        at = np.minimum(starts + i, n - 1)
        valid = (starts + i < n) & (rec_of_row[at] == np.arange(m))
        out[f"frame{i}"] = np.where(valid, rows.frame[order[at]], -1)
        out[f"file{i}"] = np.where(valid, file_id, -1).astype(np.int32)
    for k, t in RECORD.items():
        out[k] = out[k].astype(t, copy=False)
    return out


def _eff_close(rec: Records, idx: np.ndarray) -> np.ndarray:
    """Did the flow of records `idx` close after its last SYN? 1 yes, 0 no, -1 unknown."""
    has_syn, cals = rec["has_syn"][idx], rec["cals"][idx]
    return np.where(has_syn | cals, cals.astype(np.int8), UNKNOWN)


# The columns a later record of the same flow changes (the rest are the earlier's).
COMBINED = (
    *("first_ts", "last_ts", "pkts_a", "pkts_b", "bytes_a", "bytes_b", "flags_a", "flags_b"),
    *("first_dir", "open_dir", "answer_dir", "err_dir", "err_type", "err_code"),
    *("has_syn", "cals", "isn", "vlan_lo", "vlan_hi", "encap"),
    *(f"frame{i}" for i in range(FRAMES)),
    *(f"file{i}" for i in range(FRAMES)),
)


def _combine(p: Records, r: Records) -> Records:
    """Element-wise: record r (later) appended to record p (earlier), same key.
    Only the COMBINED columns are read and returned."""
    out = Records({k: p[k] for k in COMBINED})
    out["first_ts"] = np.minimum(p["first_ts"], r["first_ts"])
    out["last_ts"] = np.maximum(p["last_ts"], r["last_ts"])
    for k in ("pkts_a", "pkts_b", "bytes_a", "bytes_b"):
        out[k] = p[k] + r[k]
    for k in ("flags_a", "flags_b"):
        out[k] = p[k] | r[k]
    for k in ("first_dir", "open_dir", "answer_dir", "err_dir"):
        out[k] = np.where(p[k] >= 0, p[k], r[k])
    had_err = p["err_dir"] >= 0
    out["err_type"] = np.where(had_err, p["err_type"], r["err_type"])
    out["err_code"] = np.where(had_err, p["err_code"], r["err_code"])
    out["has_syn"] = p["has_syn"] | r["has_syn"]
    out["cals"] = np.where(r["has_syn"], r["cals"], p["cals"] | r["cals"])
    out["isn"] = np.where(r["has_syn"], r["isn"], p["isn"])
    lo_p = np.where(p["vlan_lo"] < 0, 1 << 20, p["vlan_lo"])
    lo_r = np.where(r["vlan_lo"] < 0, 1 << 20, r["vlan_lo"])
    lo = np.minimum(lo_p, lo_r)
    out["vlan_lo"] = np.where(lo == 1 << 20, -1, lo).astype(np.int32)
    out["vlan_hi"] = np.maximum(p["vlan_hi"], r["vlan_hi"])
    out["encap"] = np.maximum(p["encap"], r["encap"])
    # Keep the first FRAMES frames, in order (p's come first); most records already
    # have all theirs, so only the others are worked out.
    short = np.flatnonzero(p[f"frame{FRAMES - 1}"] < 0)
    if len(short):
        frames = np.stack(
            [p[f"frame{i}"][short] for i in range(FRAMES)]
            + [r[f"frame{i}"][short] for i in range(FRAMES)],
            axis=1,
        )
        files = np.stack(
            [p[f"file{i}"][short] for i in range(FRAMES)]
            + [r[f"file{i}"][short] for i in range(FRAMES)],
            axis=1,
        )
        pick = np.argsort(frames < 0, axis=1, kind="stable")[:, :FRAMES]
        rows = np.arange(len(short))[:, None]
        for i in range(FRAMES):
            out[f"frame{i}"] = out[f"frame{i}"].copy()
            out[f"file{i}"] = out[f"file{i}"].copy()
            out[f"frame{i}"][short] = frames[rows, pick][:, i]
            out[f"file{i}"][short] = files[rows, pick][:, i]
    return out


class FlowTable:
    """Flows so far. `update(batch)` adds packets; `merge(other)` adds a later table."""

    def __init__(self, file_id: int = 0) -> None:
        self.file_id = file_id
        self._store = Records.empty()  # capacity grows by doubling; `rec` is the used part
        self._used = 0
        self._touched = np.zeros(0, bool)  # per stored record: changed since changed()
        self._finished: Flows | None = None  # set by finish(): the table is spent
        self.open_hash = np.zeros(0, np.uint64)  # sorted keys ...
        self.open_idx = np.zeros(0, np.int64)  # ... and the index of their latest record
        self.fragments = FragmentPorts()
        self.collisions = 0

    def __len__(self) -> int:
        return self._used

    @property
    def rec(self) -> Records:
        """The flow records so far (views into the store: writes go through)."""
        return Records({k: v[: self._used] for k, v in self._store.items()})

    def _append(self, added: Records) -> None:
        need = self._used + len(added)
        if need > len(self._store):
            size = max(need, 2 * len(self._store), 1024)
            grown = Records({k: np.zeros(size, dtype=RECORD[k]) for k in RECORD})
            for k in RECORD:
                grown[k][: self._used] = self._store[k][: self._used]
            self._store = grown
            self._touched = np.concatenate(
                [self._touched[: self._used], np.zeros(size - self._used, bool)]
            )
        for k in RECORD:
            self._store[k][self._used : need] = added[k]
        self._touched[self._used : need] = True
        self._used = need

    def update(self, rows: PacketBatch) -> None:
        if not len(rows):
            return
        self.fragments.resolve(rows)
        self.merge_records(records_from_rows(rows, self.file_id))

    def merge(self, other: FlowTable) -> None:
        """Append `other`, a table of what came after this one (e.g. the next file)."""
        self.collisions += other.collisions
        self.fragments.unresolved += other.fragments.unresolved
        self.merge_records(other.rec)

    def merge_records(self, new: Records) -> None:
        if self._finished is not None:
            raise RuntimeError("this flow table is finished; merge into a new one")
        if not len(new):
            return
        order = np.lexsort((new["seq"], new["hash"]))
        new = new.take(order)
        h = new["hash"]
        first = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
        last = np.r_[first[1:] - 1, len(h) - 1]
        keys = h[first]
        has_second = last > first
        consumed = np.zeros(len(new), bool)
        tentative = new["tentative"].copy()

        pos = np.searchsorted(self.open_hash, keys)
        clipped = np.minimum(pos, max(len(self.open_hash) - 1, 0))
        found = np.zeros(len(keys), bool)
        if len(self.open_hash):
            found = self.open_hash[clipped] == keys
        t_idx = np.where(found, self.open_idx[clipped] if len(self.open_idx) else 0, -1)
        if found.any():
            rec = self.rec
            f = np.flatnonzero(found)
            t, b1 = t_idx[f], first[f]
            same = np.ones(len(f), bool)
            for k in KEY:
                same &= rec[k][t] == new[k][b1]
            self.collisions += int((~same).sum())
            found[f[~same]] = False
            f, t, b1 = f[same], t[same], b1[same]
            # Step 1: the table's latest record of the key, and the first new record.
            eff = _eff_close(rec, t)
            b1_syn = new["syn_start"][b1]
            same_isn = rec["isn"][t] == new["isn0"][b1]
            merge1 = ~b1_syn | (eff == 0) | ((eff == 1) & same_isn)
            mt, mb = t[merge1], b1[merge1]
            if len(mt):
                self._assign(mt, _combine(rec.take(mt, COMBINED), new.take(mb, COMBINED)))
            consumed[mb] = True
            # Undecided while the table's record has no SYN: whether it closed or not,
            # the SYN it continues (and its ISN) is in an earlier table.
            tentative[b1[~merge1]] = ~rec["has_syn"][t[~merge1]]
            # Step 2: a headless first record merged; decide the tentative second one.
            sel = merge1 & ~b1_syn & has_second[f]
            sel &= new["tentative"][np.minimum(b1 + 1, len(new) - 1)]
            t2, b2 = t[sel], b1[sel] + 1
            if len(t2):
                eff2 = _eff_close(rec, t2)
                tentative[b2] = ~rec["has_syn"][t2]
                go = (eff2 == 0) | ((eff2 == 1) & (rec["isn"][t2] == new["isn0"][b2]))
                t2, b2 = t2[go], b2[go]
                self._assign(t2, _combine(rec.take(t2, COMBINED), new.take(b2, COMBINED)))
                consumed[b2] = True
        new["tentative"] = tentative
        keep = np.flatnonzero(~consumed)
        base = len(self.rec)
        added = new.take(keep)
        added["seq"] = np.arange(base, base + len(keep), dtype=np.int64)
        self._append(added)
        # The latest record of each key: its last unconsumed new record, if any.
        new_index = np.full(len(new), -1, np.int64)
        new_index[keep] = base + np.arange(len(keep))
        latest = np.maximum.reduceat(new_index, first)
        latest = np.where(latest >= 0, latest, t_idx)
        upd = found
        self.open_idx[clipped[upd]] = latest[upd]
        ins = ~found
        if ins.any():
            # Keys already open but colliding keep their slot; only truly new keys insert.
            ins &= (
                ~((pos < len(self.open_hash)) & (self.open_hash[clipped] == keys))
                if len(self.open_hash)
                else ins
            )
            self.open_hash = np.insert(self.open_hash, pos[ins], keys[ins])
            self.open_idx = np.insert(self.open_idx, pos[ins], latest[ins])

    def _assign(self, idx: np.ndarray, values: Records) -> None:
        for k, v in values.items():
            self._store[k][idx] = v
        self._touched[idx] = True

    def finish(self) -> Flows:
        """Decide what is still tentative and orient every flow by its initiator.

        This ends the table: its records are handed over (and their memory
        released) rather than copied once more. Flows come in order of first packet.
        """
        if self._finished is not None:
            return self._finished
        rec = _settled(self.rec)
        self._store, self._used = Records.empty(), 0
        self.open_hash, self.open_idx = self.open_hash[:0], self.open_idx[:0]
        self._finished = Flows.from_records(rec, self.fragments.unresolved)
        return self._finished

    def changed(self) -> Flows:
        """The flows that got packets since the last call, as `finish()` would give
        them, leaving the table as it is: what live watching re-judges each tick
        (most live flows are idle; nothing about them changed). Earlier flows of
        the same endpoints and ports come too: settling a flow needs them."""
        rec = self.rec
        touched = self._touched[: self._used]
        rows = np.flatnonzero(np.isin(rec["hash"], rec["hash"][touched]))
        touched[:] = False
        return Flows.from_records(_settled(rec.take(rows)), 0)

    def evict(self, now: int, idle: int, grace: int) -> Flows:
        """Take out the flows that are over: closed (FIN both ways, or RST) for
        `grace` ns, or idle for `idle` ns, as of `now` (ns). Memory then stays with
        the live flows: what long captures and live watching need."""
        rec = self.rec
        if not len(self.open_idx):
            return Flows.from_records(Records.empty(), 0)
        latest = self.open_idx
        last = rec["last_ts"][latest]
        fa, fb = rec["flags_a"][latest], rec["flags_b"][latest]
        closed = (((fa & FIN) != 0) & ((fb & FIN) != 0)) | (((fa | fb) & RST) != 0)
        over = (now - last > idle) | (closed & (now - last > grace))
        if not over.any():
            return Flows.from_records(Records.empty(), 0)
        gone = self.open_hash[over]
        rows = np.isin(rec["hash"], gone)
        taken = rec.take(np.flatnonzero(rows))
        keep = np.flatnonzero(~rows)
        remap = np.cumsum(~rows) - 1
        kept = rec.take(keep)
        kept["seq"] = np.arange(len(kept), dtype=np.int64)  # store order is seq order
        touched = self._touched[keep]
        self._store, self._used = Records.empty(), 0
        self._append(kept)
        self._touched[: len(kept)] = touched
        self.open_hash, self.open_idx = self.open_hash[~over], remap[self.open_idx[~over]]
        return Flows.from_records(_settled(taken), 0)


def _settled(rec: Records) -> Records:
    """Records with their tentative boundaries decided (no earlier table will come),
    in order of first packet."""
    if len(rec) and rec["tentative"].any():
        order = np.lexsort((rec["seq"], rec["hash"]))
        rec = rec.take(order)
        tent = np.flatnonzero(rec["tentative"])
        prev = tent - 1
        # A tentative record joins its predecessor, unless that closed after its
        # last SYN and this SYN is a new connection's.
        join = (_eff_close(rec, prev) != 1) | (rec["isn"][prev] == rec["isn0"][tent])
        tent, prev = tent[join], prev[join]
        merged = _combine(rec.take(prev, COMBINED), rec.take(tent, COMBINED))
        for k, v in merged.items():
            rec[k][prev] = v
        rec = rec.take(np.setdiff1d(np.arange(len(rec)), tent))
    return rec.take(np.lexsort((rec["frame0"], rec["file0"], rec["first_ts"])))


# Outcome, close and initiator_by codes, and their names in reports.
OUTCOMES = ("established", "refused", "unanswered", "midstream")
CLOSES = ("open", "fin", "rst", "")  # "" for flows that are not TCP
NOT_TCP = 3
INITIATOR_BY = ("syn", "syn-ack", "port", "first-packet", "request", "quoted")
"""How a flow's initiator was decided:
syn: a pure SYN was seen; syn-ack: only the SYN-ACK was seen (its receiver opened);
port: started mid-stream, the side using a service port taken as responder (as Zeek
does); first-packet: nothing better, the sender of the first packet; request: the
sender of an ICMP query (echo request, ...); quoted: only an ICMP error quoting the
flow's packet was seen, the quoted packet's sender.
"""
ESTABLISHED, REFUSED, UNANSWERED, MIDSTREAM = range(4)
BY_SYN, BY_SYNACK, BY_PORT, BY_FIRST, BY_REQUEST, BY_QUOTED = range(6)


def port_class(port: np.ndarray) -> np.ndarray:
    """How much a port looks like a service: 3 well-known, 2 registered below the
    ephemeral ranges, 1 Linux ephemeral, 0 IANA dynamic."""
    return np.select([port < 1024, port < 32768, port < 49152], [3, 2, 1], 0)


@dataclass
class Flows:
    """Finished flows, oriented: `init_*` is the initiator, `resp_*` the responder.

    fwd = sent by the initiator, rev = sent by the responder.
    """

    cols: dict[str, np.ndarray]
    fragments_unresolved: int = 0

    def __len__(self) -> int:
        return len(self.cols["proto"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]

    def take(self, index: np.ndarray) -> Flows:
        """The flows at `index` (indices or a boolean mask)."""
        return Flows({k: v[index] for k, v in self.cols.items()}, self.fragments_unresolved)

    @classmethod
    def from_records(cls, rec: Records, fragments_unresolved: int = 0) -> Flows:
        n = len(rec)
        proto = rec["proto"].astype(np.int64)
        tcp = proto == TCP
        icmp = any_of(proto, (ICMP, ICMPV6))
        own_packets = (rec["pkts_a"] + rec["pkts_b"]) > 0
        by = np.full(n, BY_FIRST, np.int8)
        init = rec["first_dir"].astype(np.int8).copy()
        # Port heuristic: the side whose port looks more like a service is the responder.
        ca, cb = port_class(rec["a_port"]), port_class(rec["b_port"])
        port_init = np.where(ca > cb, 1, 0)  # B opened towards A's service port
        decisive = (ca != cb) & ~icmp
        opened = rec["open_dir"] >= 0
        answered = rec["answer_dir"] >= 0
        # TCP: SYN, else SYN-ACK, else the port heuristic, else the first packet.
        use = tcp & opened
        init[use], by[use] = rec["open_dir"][use], BY_SYN
        use = tcp & ~opened & answered
        init[use], by[use] = 1 - rec["answer_dir"][use], BY_SYNACK
        use = tcp & ~opened & ~answered & decisive
        init[use], by[use] = port_init[use], BY_PORT
        # UDP and others: the first packet, unless the ports clearly say otherwise.
        use = ~tcp & ~icmp & decisive & (port_init != init) & own_packets
        init[use], by[use] = port_init[use], BY_PORT
        use = icmp & opened
        init[use], by[use] = rec["open_dir"][use], BY_REQUEST
        use = icmp & ~opened & answered
        init[use], by[use] = 1 - rec["answer_dir"][use], BY_SYNACK
        # Only ICMP errors: the quoted packet's sender started it.
        use = ~own_packets
        init[use], by[use] = rec["err_dir"][use], BY_QUOTED
        init = np.maximum(init, 0)
        swap = init == 1

        cols: dict[str, np.ndarray] = {"proto": proto}
        cols["init_hi"] = np.where(swap, rec["b_hi"], rec["a_hi"])
        cols["init_lo"] = np.where(swap, rec["b_lo"], rec["a_lo"])
        cols["resp_hi"] = np.where(swap, rec["a_hi"], rec["b_hi"])
        cols["resp_lo"] = np.where(swap, rec["a_lo"], rec["b_lo"])
        cols["init_port"] = np.where(swap, rec["b_port"], rec["a_port"]).astype(np.int64)
        cols["resp_port"] = np.where(swap, rec["a_port"], rec["b_port"]).astype(np.int64)
        cols["icmp_req"] = rec["icmp_req"].astype(np.int64)
        cols["first_ts"], cols["last_ts"] = rec["first_ts"], rec["last_ts"]
        cols["pkts_fwd"] = np.where(swap, rec["pkts_b"], rec["pkts_a"])
        cols["pkts_rev"] = np.where(swap, rec["pkts_a"], rec["pkts_b"])
        cols["bytes_fwd"] = np.where(swap, rec["bytes_b"], rec["bytes_a"])
        cols["bytes_rev"] = np.where(swap, rec["bytes_a"], rec["bytes_b"])
        resp_flags = np.where(swap, rec["flags_a"], rec["flags_b"]).astype(np.int64)
        cols["flags_fwd"] = np.where(swap, rec["flags_b"], rec["flags_a"]).astype(np.int64)
        cols["flags_rev"] = resp_flags
        all_flags = (rec["flags_a"] | rec["flags_b"]).astype(np.int64)
        err_type = rec["err_type"].astype(np.int64)
        is_v4 = (rec["a_hi"] == 0) & ((rec["a_lo"] >> np.uint64(32)) == np.uint64(0xFFFF))
        # Destination unreachable (ICMP 3, ICMPv6 1, any code: port, host, net,
        # administratively prohibited) answering a packet the initiator sent.
        unreachable = np.where(is_v4, err_type == 3, err_type == 1)
        icmp_refused = unreachable & (rec["err_dir"] == init) & (rec["err_dir"] >= 0)
        outcome = np.full(n, UNANSWERED, np.int8)
        answered_by_resp = cols["pkts_rev"] > 0
        outcome[answered_by_resp] = ESTABLISHED
        tcp_syn = tcp & (by == BY_SYN)
        outcome[tcp_syn & ((resp_flags & (SYN | ACK)) == (SYN | ACK))] = ESTABLISHED
        # The capture missed the answer (a span seeing one direction), but the
        # initiator acknowledged it: only a SYN-ACK received makes a client send ACKs.
        outcome[tcp_syn & (cols["pkts_rev"] == 0) & ((cols["flags_fwd"] & ACK) != 0)] = ESTABLISHED
        refused_rst = tcp_syn & ((resp_flags & RST) != 0) & ((resp_flags & SYN) == 0)
        outcome[refused_rst] = REFUSED
        outcome[~answered_by_resp & icmp_refused] = REFUSED
        outcome[tcp & any_of(by, (BY_PORT, BY_FIRST))] = MIDSTREAM
        cols["outcome"] = outcome
        close = np.full(n, NOT_TCP, np.int8)
        close[tcp] = 0
        close[tcp & ((all_flags & FIN) != 0)] = 1
        close[tcp & ((all_flags & RST) != 0)] = 2
        cols["close"] = close
        cols["initiator_by"] = by
        cols["icmp_err_type"] = err_type
        cols["icmp_err_code"] = rec["err_code"].astype(np.int64)
        for k in ("vlan_lo", "vlan_hi", "encap", "iface"):
            cols[k] = rec[k].astype(np.int64)
        for i in range(FRAMES):
            cols[f"frame{i}"] = rec[f"frame{i}"]
            cols[f"file{i}"] = rec[f"file{i}"].astype(np.int64)
        return cls(cols, fragments_unresolved)
