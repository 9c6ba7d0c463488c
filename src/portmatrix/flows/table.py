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
"""

from __future__ import annotations

import numpy as np

from portmatrix.decode.batch import PacketBatch
from portmatrix.decode.reassembly import FragmentPorts
from portmatrix.flows.model import FRAMES, Flows
from portmatrix.flows.orient import from_records
from portmatrix.flows.records import FIN, KEY, RECORD, RST, UNKNOWN, Records, records_from_rows


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
        rows = self.fragments.resolve(rows)
        if len(rows):
            self.merge_records(records_from_rows(rows, self.file_id))

    def _flush_fragments(self) -> None:
        """Fragments still waiting for their first fragment: the input has ended."""
        rows = self.fragments.flush()
        if len(rows):
            self.merge_records(records_from_rows(rows, self.file_id))

    def merge(self, other: FlowTable) -> None:
        """Append `other`, a table of what came after this one (e.g. the next file)."""
        self.collisions += other.collisions
        other._flush_fragments()
        self.fragments.add_counts(other.fragments)
        self.merge_records(other.rec)

    def merge_records(self, new: Records) -> None:
        """Add records that came after everything in the table.

        Longer than most functions here, on purpose: its two steps (join each
        key's first new record to the table's latest, then decide a tentative
        second one) and the open-key index update share a dozen arrays, and the
        merge's associativity is easier to check read in one place.
        """
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
        self._flush_fragments()
        rec = _settled(self.rec)
        self._store, self._used = Records.empty(), 0
        self.open_hash, self.open_idx = self.open_hash[:0], self.open_idx[:0]
        self._finished = from_records(rec, **self.fragments.counts())
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
        return from_records(_settled(rec.take(rows)))

    def evict(self, now: int, idle: int, grace: int) -> Flows:
        """Take out the flows that are over: closed (FIN both ways, or RST) for
        `grace` ns, or idle for `idle` ns, as of `now` (ns). Memory then stays with
        the live flows: what long captures and live watching need."""
        rec = self.rec
        if not len(self.open_idx):
            return from_records(Records.empty())
        latest = self.open_idx
        last = rec["last_ts"][latest]
        fa, fb = rec["flags_a"][latest], rec["flags_b"][latest]
        closed = (((fa & FIN) != 0) & ((fb & FIN) != 0)) | (((fa | fb) & RST) != 0)
        over = (now - last > idle) | (closed & (now - last > grace))
        if not over.any():
            return from_records(Records.empty())
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
        return from_records(_settled(taken))


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
