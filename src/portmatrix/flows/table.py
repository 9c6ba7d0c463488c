"""The flow table: records merged into flows, batch after batch, file after file.

A new pure SYN after a closed (FIN or RST) connection on the same 5-tuple
starts a new flow, unless it repeats the closed connection's initial sequence
number (a retransmission, or a capture that holds the same packets twice),
as tshark's stream tracking does. Two consecutive records of a key belong to
one flow unless the earlier one closed after its last SYN. Whether the first
record of a key in a table closed is sometimes unknown (it started
mid-stream, before anything this table saw): such boundaries stay *tentative*
until a merge with the earlier table or `finish()` decides them. This makes
`merge` exact and associative, so batches, files and workers combine in any
grouping with the same result.

Packets come in through the compiled group-by (`_table.c`: each packet finds
its record through a hash index and updates it in place) where it was built,
else cut into records with numpy (`records.py`) and merged; the numpy way is
the reference, and the tests check both leave the same records.
"""

from __future__ import annotations

import numpy as np

from portmatrix.decode.batch import PacketBatch
from portmatrix.decode.reassembly import FragmentPorts
from portmatrix.flows import keyindex
from portmatrix.flows.keyindex import HashIndex, SortedIndex
from portmatrix.flows.model import FRAMES, Flows
from portmatrix.flows.orient import first_packet_order, from_records, from_table
from portmatrix.flows.records import FIN, KEY, RST, UNKNOWN, Records, records_from_rows
from portmatrix.flows.store import RecordStore


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
    untagged = np.int32(1 << 12)  # above every VLAN id
    lo_p = np.where(p["vlan_lo"] < 0, untagged, p["vlan_lo"])
    lo_r = np.where(r["vlan_lo"] < 0, untagged, r["vlan_lo"])
    lo = np.minimum(lo_p, lo_r)
    out["vlan_lo"] = np.where(lo == untagged, -1, lo)
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
    """Flows so far. `update(batch)` adds packets; `merge(other)` adds a later table.

    `compiled=False` builds it with numpy alone (the reference).

    What holds between calls (and what code that times flows out, such as a
    live watcher's timer wheel, may rely on): records sit in `_store`
    (store.RecordStore) in order of creation, so a record's place is its `seq`
    and a later record of a key comes after an earlier one; `_index`
    (keyindex) maps each key's hash to its latest record, the only one
    packets still update; `touched` marks records changed since `changed()`
    last cleared it. Removing records means `_store.keep(rows)` (order kept)
    and then `_index.rebuild` with the surviving latest records renumbered to
    their new places, as `evict` does.
    """

    def __init__(self, file_id: int = 0, compiled: bool | None = None) -> None:
        self.file_id = file_id
        self._store = RecordStore()
        self._fast = keyindex.compiled is not None and compiled is not False
        self._index = HashIndex(self._store) if self._fast else SortedIndex(self._store)
        self._finished: Flows | None = None  # set by finish(): the table is spent
        self.fragments = FragmentPorts()
        self.collisions = 0

    def __len__(self) -> int:
        return self._store.used

    @property
    def rec(self) -> Records:
        """The flow records so far (views into the store: writes go through)."""
        return self._store.records()

    @property
    def open_idx(self) -> np.ndarray:
        """The latest record of every open key (one per flow key)."""
        return self._index.entries()

    def update(self, rows: PacketBatch) -> None:
        if not len(rows):
            return
        rows = self.fragments.resolve(rows)
        if not len(rows):
            return
        if self._fast:
            self._group(rows)
        else:
            self.merge_records(records_from_rows(rows, self.file_id))

    def _group(self, rows: PacketBatch) -> None:
        """The compiled group-by; the store and the index grow when it asks."""
        columns = tuple(
            np.ascontiguousarray(getattr(rows, name), kind) for name, kind in _ROW_COLUMNS
        )
        store, index, start = self._store, self._index, 0
        while True:
            start, store.used, index.count, collisions, status = keyindex.compiled.update(
                store.array,
                store.used,
                index.slots,
                index.count,
                index.limit,
                self.file_id,
                start,
                columns,
            )
            self.collisions += collisions
            if status == _STORE_FULL:
                store.reserve(store.used + len(rows) - start)
            elif status == _INDEX_FULL:
                index.grow(index.count + len(rows) - start)
            else:
                return

    def _flush_fragments(self) -> None:
        """Fragments still waiting for their first fragment: the input has ended."""
        rows = self.fragments.flush()
        if len(rows):
            self.merge_records(records_from_rows(rows, self.file_id))

    def renumber(self, frames: int) -> None:
        """Its frames are `frames` later in their file than they were numbered (a span
        of a file, read apart from the spans before it)."""
        for i in range(FRAMES):
            column = self._store.column(f"frame{i}")
            column[column >= 0] += frames
        self.fragments.renumber(frames)

    def merge(self, other: FlowTable) -> None:
        """Append `other`, a table of what came after this one (e.g. the next file).
        `other` is spent: its records move here (its memory goes as they do)."""
        self.collisions += other.collisions
        other._flush_fragments()
        self.fragments.add_counts(other.fragments)
        new = _by_key(other.rec)
        other._store.clear()
        other._index.rebuild(np.zeros(0, np.int64))
        self._merge_sorted(new)

    def merge_records(self, new: Records) -> None:
        """Add records that came after everything in the table."""
        self._merge_sorted(_by_key(new))

    def _merge_sorted(self, new: Records) -> None:
        """`merge_records` of records in key order (`_by_key`).

        Longer than most functions here, on purpose: its two steps (join each
        key's first new record to the table's latest, then decide a tentative
        second one) and the open-key index update share a dozen arrays, and the
        merge's associativity is easier to check read in one place.
        """
        if self._finished is not None:
            raise RuntimeError("this flow table is finished; merge into a new one")
        if not len(new):
            return
        h = new["hash"]
        first = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
        last = np.r_[first[1:] - 1, len(h) - 1]
        keys = h[first]
        has_second = last > first
        consumed = np.zeros(len(new), bool)
        tentative = new["tentative"].copy()

        t_idx = self._index.find(keys)
        found = t_idx >= 0
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
            del rec  # views of the store, which may move as it grows below
        new["tentative"] = tentative
        keep = np.flatnonzero(~consumed)
        base = len(self)
        self._store.append(new if len(keep) == len(new) else new.take(keep))
        # The latest record of each key: its last unconsumed new record, if any.
        new_index = np.full(len(new), -1, np.int64)
        new_index[keep] = base + np.arange(len(keep))
        latest = np.maximum.reduceat(new_index, first)
        latest = np.where(latest >= 0, latest, t_idx)
        # Keys already open but colliding keep their slot; only truly new keys go in.
        self._index.put(latest[found | (t_idx < 0)])

    def _assign(self, idx: np.ndarray, values: Records) -> None:
        for k, v in values.items():
            self._store.column(k)[idx] = v
        self._store.column("touched")[idx] = True

    def finish(self) -> Flows:
        """Decide what is still tentative and orient every flow by its initiator.

        This ends the table: its records become flows a block at a time, each
        block's memory released as it is done, rather than copied once more.
        Flows come in order of first packet.
        """
        if self._finished is not None:
            return self._finished
        self._flush_fragments()
        rec = self.rec
        remain = _join_tentative(rec)
        counts = self.fragments.counts()
        self._finished = from_table(rec, remain, self._store.release, **counts)
        del rec
        self._store.clear()
        self._index.rebuild(np.zeros(0, np.int64))
        return self._finished

    def changed(self) -> Flows:
        """The flows that got packets since the last call, as `finish()` would give
        them, leaving the table as it is: what live watching re-judges each tick
        (most live flows are idle; nothing about them changed). Earlier flows of
        the same endpoints and ports come too: settling a flow needs them."""
        rec = self.rec
        touched = self._store.column("touched")
        rows = np.flatnonzero(np.isin(rec["hash"], rec["hash"][touched]))
        touched[:] = False
        return from_records(_settled(rec.take(rows)))

    def evict(self, now: int, idle: int, grace: int) -> Flows:
        """Take out the flows that are over: closed (FIN both ways, or RST) for
        `grace` ns, or idle for `idle` ns, as of `now` (ns). Memory then stays with
        the live flows: what long captures and live watching need."""
        latest = self._index.entries()
        if not len(latest):
            return from_records(Records.empty())
        rec = self.rec
        last = rec["last_ts"][latest]
        fa, fb = rec["flags_a"][latest], rec["flags_b"][latest]
        closed = (((fa & FIN) != 0) & ((fb & FIN) != 0)) | (((fa | fb) & RST) != 0)
        over = (now - last > idle) | (closed & (now - last > grace))
        if not over.any():
            return from_records(Records.empty())
        gone = rec["hash"][latest[over]]
        rows = np.isin(rec["hash"], gone)
        taken = rec.take(np.flatnonzero(rows))
        remap = np.cumsum(~rows) - 1
        del rec
        self._store.keep(np.flatnonzero(~rows))  # store order is seq order
        self._index.rebuild(remap[latest[~over]])
        return from_records(_settled(taken))

    def __getstate__(self) -> dict:
        state = dict(vars(self))
        if self._fast:  # the index is rebuilt where the table is unpickled
            state["_index"] = self._index.entries()
        return state

    def __setstate__(self, state: dict) -> None:
        vars(self).update(state)
        if self._fast:
            fast = keyindex.compiled is not None
            self._index = (HashIndex if fast else SortedIndex)(self._store)
            self._fast = fast
            self._index.rebuild(state["_index"])


# The packet columns the compiled group-by reads, in its order, with their types.
_ROW_COLUMNS = (
    *(
        (name, np.int64)
        for name in ("frame", "ts", "wirelen", "proto", "sport", "dport", "tcp_flags")
    ),
    *((name, np.int64) for name in ("tcp_seq", "icmp_type", "icmp_code", "icmp_req")),
    ("iface", np.int32),
    ("vlan", np.int32),
    *((name, np.uint8) for name in ("encap", "kind", "frag")),
    *((name, np.uint64) for name in ("src_hi", "src_lo", "dst_hi", "dst_lo")),
)
_STORE_FULL, _INDEX_FULL = 1, 2


def _by_key(rec: Records) -> Records:
    """A copy of the records in key order, each key's in their order."""
    return rec.take(np.lexsort((rec["seq"], rec["hash"])))


def _join_tentative(rec: Records) -> np.ndarray | None:
    """Decide the tentative boundaries, no earlier table being left to come: a
    tentative record joins its key's previous record (in place), unless that one
    closed after its last SYN and this SYN is a new connection's. The records that
    remain, or None when all do."""
    if not len(rec) or not rec["tentative"].any():
        return None
    group = np.flatnonzero(np.isin(rec["hash"], rec["hash"][rec["tentative"]]))
    group = group[np.lexsort((rec["seq"][group], rec["hash"][group]))]
    at = np.flatnonzero(rec["tentative"][group])
    tent, prev = group[at], group[at - 1]  # a tentative record is never its key's first
    join = (_eff_close(rec, prev) != 1) | (rec["isn"][prev] == rec["isn0"][tent])
    tent, prev = tent[join], prev[join]
    merged = _combine(rec.take(prev, COMBINED), rec.take(tent, COMBINED))
    for k, v in merged.items():
        rec[k][prev] = v
    remain = np.ones(len(rec), bool)
    remain[tent] = False
    return np.flatnonzero(remain)


def _settled(rec: Records) -> Records:
    """Records (a copy) with their tentative boundaries decided, in order of first
    packet."""
    remain = _join_tentative(rec)
    if remain is not None:
        rec = rec.take(remain)
    return rec.take(first_packet_order(rec))
