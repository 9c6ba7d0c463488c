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

Live watching ends flows as it goes (`evict`): each open key has a time at
which it is next looked at (the earliest it could be over), kept in a timer
wheel of one-second buckets, as Zeek and nfstream do; a tick looks only at
the keys whose time came, so its cost follows the flows that end, not the
flows that live. Records of ended flows are marked dead and the store is
compacted once they outnumber the living, so that too is paid per flow ended.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

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


def distinct(a: np.ndarray) -> np.ndarray:
    """The distinct values of `a`, sorted: `np.unique` by a sort (numpy 2 hashes
    instead, several times slower on hundreds of thousands of 64-bit keys)."""
    s = np.sort(a)
    return s[np.r_[True, s[1:] != s[:-1]]] if len(s) else s


BUCKET = 1_000_000_000  # ns: the timer wheel's resolution
UNSCHEDULED = np.iinfo(np.int64).max


class FlowTable:
    """Flows so far. `update(batch)` adds packets; `merge(other)` adds a later table."""

    COMPACT_AT = 1 << 16  # dead records kept before compacting, at least (and the living)

    def __init__(self, file_id: int = 0) -> None:
        self.file_id = file_id
        self._store = Records.empty()  # capacity grows by doubling; `rec` is the used part
        self._used = 0
        self._touched = np.zeros(0, bool)  # per stored record: changed since changed()
        self._prev = np.zeros(0, np.int64)  # per stored record: the key's record before, -1
        self._dead = np.zeros(0, bool)  # per stored record: its flow was evicted
        self._n_dead = 0
        self._finished: Flows | None = None  # set by finish(): the table is spent
        self.open_hash = np.zeros(0, np.uint64)  # sorted keys ...
        self.open_idx = np.zeros(0, np.int64)  # ... the index of their latest record ...
        self.open_check = np.zeros(0, np.int64)  # ... and when to look at them next (ns)
        self._timeouts: tuple[int, int, int] | None = None  # idle, grace, half-open (ns)
        self._wheel: dict[int, list[np.ndarray]] = {}  # bucket -> keys to look at then
        self._buckets: list[int] = []  # heap of the wheel's buckets
        self.fragments = FragmentPorts()
        self.collisions = 0

    def __len__(self) -> int:
        return self._used - self._n_dead

    @property
    def rec(self) -> Records:
        """The flow records so far (views into the store: writes go through)."""
        self._compact()
        return self._view()

    def _view(self) -> Records:
        """The stored records, the dead among them (see `_dead`) included."""
        return Records({k: v[: self._used] for k, v in self._store.items()})

    def _append(self, added: Records, prev: np.ndarray) -> None:
        need = self._used + len(added)
        if need > len(self._store):
            size = max(need, len(self._store) * 3 // 2, 1024)  # grows by half
            store = Records(self._store)
            for k in RECORD:  # a column at a time: the old one goes as the new one comes
                grown = np.zeros(size, dtype=RECORD[k])
                grown[: self._used] = store[k][: self._used]
                store[k] = grown
            self._store = store
            more = size - self._used
            self._touched = np.concatenate([self._touched[: self._used], np.zeros(more, bool)])
            self._prev = np.concatenate([self._prev[: self._used], np.full(more, -1, np.int64)])
            self._dead = np.concatenate([self._dead[: self._used], np.zeros(more, bool)])
        for k in RECORD:
            self._store[k][self._used : need] = added[k]
        self._touched[self._used : need] = True
        self._prev[self._used : need] = prev
        self._dead[self._used : need] = False
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
        if self._n_dead * 4 >= self._used and self._used + len(new) > len(self._store):
            self._compact()  # room from ended flows, before growing the store
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
            rec = self._view()
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
        base = self._used
        added = new.take(keep)
        added["seq"] = np.arange(base, base + len(keep), dtype=np.int64)
        # Each added record follows the key's latest record: the table's, or the one
        # added just before it.
        group = np.repeat(np.arange(len(keys)), last - first + 1)[keep]
        starts = np.r_[True, group[1:] != group[:-1]] if len(keep) else np.zeros(0, bool)
        before = np.where(found, t_idx, -1)[group]
        prev = np.where(starts, before, base + np.arange(len(keep)) - 1)
        self._append(added, prev)
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
            self.open_check = np.insert(self.open_check, pos[ins], UNSCHEDULED)
        if self._timeouts is not None:
            self._schedule(np.searchsorted(self.open_hash, keys))

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
        self.open_check = self.open_check[:0]
        self._wheel, self._buckets = {}, []
        self._finished = from_records(rec, **self.fragments.counts())
        return self._finished

    def changed(self, answered: bool = False) -> Flows:
        """The flows that got packets since the last call, as `finish()` would give
        them, leaving the table as it is: what live watching re-judges each tick
        (most live flows are idle; nothing about them changed). Earlier flows of
        the same endpoints and ports come too: settling a flow needs them. With
        `answered`, only flows that heard from both sides (or got an ICMP error):
        a flood's one-sided attempts are judged when they end, not every tick."""
        return next(self.changes(answered, piece=None), from_records(Records.empty()))

    def changes(self, answered: bool = False, piece: int | None = None) -> Iterator[Flows]:
        """`changed()` in pieces of at most `piece` changed flows (and their earlier
        ones), so judging them needs memory for a piece, not for all. A key touched
        twice may come in two pieces: what judges them must not add them up."""
        touched = self._touched[: self._used]
        rows = np.flatnonzero(touched)
        touched[:] = False
        if answered:
            st = self._store
            both = (st["pkts_a"][rows] > 0) & (st["pkts_b"][rows] > 0)
            rows = rows[both | (st["err_dir"][rows] >= 0)]
        step = piece or max(len(rows), 1)
        for lo in range(0, len(rows), step):
            part = self._with_earlier(rows[lo : lo + step])
            yield from_records(_settled(self._view().take(part)))

    def _with_earlier(self, rows: np.ndarray) -> np.ndarray:
        """`rows` (sorted) and every earlier record of their keys, sorted."""
        found, step = [rows], rows
        while len(step):
            step = self._prev[step]
            step = step[step >= 0]
            found.append(step)
        return rows if len(found) == 2 else distinct(np.concatenate(found))

    def evict(
        self,
        now: int,
        idle: int,
        grace: int,
        half_open: int | None = None,
        limit: int | None = None,
    ) -> Flows:
        """Take out the flows that are over as of `now` (ns): closed (FIN both ways,
        or RST) for `grace` ns; one-sided (no packet came back: an unanswered SYN, a
        spoofed source) for `half_open` ns, as conntrack and Zeek age out attempts
        early; any other idle for `idle` ns. Memory then stays with the live flows:
        what long captures and live watching need. Only the keys whose time came are
        looked at (see the module docstring), as of the start of `now`'s second: a
        flow ends at most a second after its time (ticks come once a second anyway).
        At most `limit` flows are taken per call (the rest wait on the wheel for the
        next call), so a flood's end is handed over in bounded pieces."""
        timeouts = (idle, grace, idle if half_open is None else half_open)
        if timeouts != self._timeouts:  # the first call, or new timeouts: all anew
            self._timeouts = timeouts
            self._wheel, self._buckets = {}, []
            self.open_check[:] = UNSCHEDULED
            self._schedule(np.arange(len(self.open_hash)))
        now = now // BUCKET * BUCKET  # as of the start of its second, as the wheel sees it
        due_keys = self._due_keys(now)
        if not len(due_keys):
            return from_records(Records.empty())
        pos = np.searchsorted(self.open_hash, due_keys)
        inside = pos < len(self.open_hash)
        pos, due_keys = pos[inside], due_keys[inside]
        pos = pos[self.open_hash[pos] == due_keys]  # not ended already
        pos = pos[self.open_check[pos] < now]  # not moved to a later bucket
        due = self._due(self.open_idx[pos])
        over = due < now
        if limit is not None and over.sum() > limit:  # the rest at the next call
            over[np.flatnonzero(over)[limit:]] = False
        self.open_check[pos[~over]] = due[~over]
        self._add_to_wheel(self.open_hash[pos[~over]], due[~over])
        return self._take(pos[over])

    def _take(self, pos: np.ndarray) -> Flows:
        """End the open keys at positions `pos`: their flows, settled."""
        if not len(pos):
            return from_records(Records.empty())
        rows = self._with_earlier(np.sort(self.open_idx[pos]))
        taken = self._view().take(rows)
        self._dead[rows] = True
        self._touched[rows] = False
        self._n_dead += len(rows)
        self.open_hash = np.delete(self.open_hash, pos)
        self.open_idx = np.delete(self.open_idx, pos)
        self.open_check = np.delete(self.open_check, pos)
        if self._n_dead > max(self._used - self._n_dead, self.COMPACT_AT):
            self._compact()
        return from_records(_settled(taken))

    def _due(self, latest: np.ndarray) -> np.ndarray:
        """When the keys whose latest records are `latest` will be over (ns)."""
        idle, grace, half_open = self._timeouts
        st = self._store
        fa, fb = st["flags_a"][latest], st["flags_b"][latest]
        closed = (((fa & FIN) != 0) & ((fb & FIN) != 0)) | (((fa | fb) & RST) != 0)
        one_sided = (st["pkts_a"][latest] == 0) | (st["pkts_b"][latest] == 0)
        wait = np.where(closed, grace, np.where(one_sided, min(half_open, idle), idle))
        return st["last_ts"][latest] + wait

    def _schedule(self, pos: np.ndarray) -> None:
        """Open keys at `pos` just changed: look at them when they could be over, if
        that is earlier than planned (a later time is found when the planned comes)."""
        if not len(pos):
            return
        due = self._due(self.open_idx[pos])
        sooner = due < self.open_check[pos]
        pos, due = pos[sooner], due[sooner]
        self.open_check[pos] = due
        self._add_to_wheel(self.open_hash[pos], due)

    def _add_to_wheel(self, keys: np.ndarray, when: np.ndarray) -> None:
        if not len(keys):
            return
        bucket = when // BUCKET
        order = np.argsort(bucket, kind="stable")
        bucket, keys = bucket[order], keys[order]
        cuts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        for lo, hi in zip(cuts, np.r_[cuts[1:], len(keys)], strict=True):
            b = int(bucket[lo])
            if b not in self._wheel:
                self._wheel[b] = []
                heapq.heappush(self._buckets, b)
            self._wheel[b].append(keys[lo:hi])

    def _due_keys(self, now: int) -> np.ndarray:
        """The keys in the buckets before `now`'s, taken off the wheel."""
        parts = []
        while self._buckets and self._buckets[0] < now // BUCKET:
            parts += self._wheel.pop(heapq.heappop(self._buckets))
        return distinct(np.concatenate(parts)) if parts else np.zeros(0, np.uint64)

    def _compact(self) -> None:
        """Drop the records of evicted flows from the store, in place (a column at a
        time: memory stays at the store's, however many flows ended)."""
        if not self._n_dead:
            return
        alive = ~self._dead[: self._used]
        keep = np.flatnonzero(alive)
        remap = np.cumsum(alive) - 1
        n = len(keep)
        for k in RECORD:
            column = self._store[k]
            column[:n] = column[keep]
        self._store["seq"][:n] = np.arange(n)  # store order is seq order
        self._touched[:n] = self._touched[keep]
        prev = self._prev[keep]
        self._prev[:n] = np.where(prev >= 0, remap[np.maximum(prev, 0)], -1)
        self._dead[: self._used] = False
        self._used, self._n_dead = n, 0
        self.open_idx = remap[self.open_idx]


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
