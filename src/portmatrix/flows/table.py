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

Live watching ends flows as it goes (`evict`): each open key has a time at
which it is next looked at (the earliest it could be over), kept in a timer
wheel of one-second buckets, as Zeek and nfstream do; a tick looks only at
the keys whose time came, so its cost follows the flows that end, not the
flows that live. Records of ended flows are marked dead and the store is
compacted once they outnumber the living, so that too is paid per flow ended;
each record's `prev` (the key's record before it) finds a key's records, and
the records a batch changed are marked as it goes (`_moved`), so neither
`changes()` nor a tick scans the table.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

import numpy as np

from portmatrix.decode.batch import PacketBatch
from portmatrix.decode.reassembly import FragmentPorts
from portmatrix.flows import keyindex
from portmatrix.flows.keyindex import HashIndex, SortedIndex
from portmatrix.flows.model import FRAMES, Flows
from portmatrix.flows.orient import first_packet_order, from_records, from_table
from portmatrix.flows.records import FIN, KEY, RST, UNKNOWN, Records, records_from_rows
from portmatrix.flows.store import STORED, RecordStore


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


def distinct(a: np.ndarray) -> np.ndarray:
    """The distinct values of `a`, sorted: `np.unique` by a sort (numpy 2 hashes
    instead, several times slower on hundreds of thousands of 64-bit keys)."""
    s = np.sort(a)
    return s[np.r_[True, s[1:] != s[:-1]]] if len(s) else s


BUCKET = 1_000_000_000  # ns: the timer wheel's resolution
UNSCHEDULED = np.iinfo(np.int64).max


class FlowTable:
    """Flows so far. `update(batch)` adds packets; `merge(other)` adds a later table.

    `compiled=False` builds it with numpy alone (the reference).

    What holds between calls (and what code that times flows out, such as a
    live watcher's timer wheel, may rely on): records sit in `_store`
    (store.RecordStore) in order of creation, so a record's place is its `seq`
    and a later record of a key comes after an earlier one; `_index`
    (keyindex) maps each key's hash to its latest record, the only one
    packets still update; each record's `prev` is its key's record before it
    (-1: the first). Removing records means `_store.keep(rows)` (order kept),
    `prev` renumbered, and `_index.rebuild` with the surviving latest records
    renumbered to their new places, as `_compact` does.

    Beside each stored record, for live watching: whether its flow ended
    (`_dead`, until the store is compacted), whether it changed since
    `changes()` (`_moved`) and since the timer wheel last looked (`_sched`),
    and, for a key's latest record, when the wheel looks at the key next
    (`_check`). Kept from the first `changes()` or `evict()` on (`_live`): a
    table that is only finished (check) pays nothing for them.
    """

    COMPACT_AT = 1 << 16  # dead records kept before compacting, at least (and the living)

    def __init__(self, file_id: int = 0, compiled: bool | None = None) -> None:
        self.file_id = file_id
        self._store = RecordStore()
        self._fast = keyindex.compiled is not None and compiled is not False
        self._index = HashIndex(self._store) if self._fast else SortedIndex(self._store)
        self._finished: Flows | None = None  # set by finish(): the table is spent
        self.fragments = FragmentPorts()
        self.collisions = 0
        self._dead = np.zeros(0, bool)
        self._moved = np.zeros(0, bool)
        self._sched = np.zeros(0, bool)
        self._check = np.zeros(0, np.int64)
        self._n_dead = 0
        self._live = False
        self._timeouts: tuple[int, int, int] | None = None  # idle, grace, half-open (ns)
        self._wheel: dict[int, list[np.ndarray]] = {}  # bucket -> keys to look at then
        self._buckets: list[int] = []  # heap of the wheel's buckets

    def __len__(self) -> int:
        return self._store.used - self._n_dead

    @property
    def rec(self) -> Records:
        """The flow records so far (views into the store: writes go through)."""
        self._compact()
        return self._store.records()

    def _go_live(self) -> None:
        """From now on, keep what live watching needs beside each record; every
        record so far counts as changed."""
        if not self._live:
            self._live = True
            self._added(0, self._store.used)

    def _added(self, lo: int, hi: int) -> None:
        """Records lo:hi were just stored: room for them beside the store, marked
        changed, not dead, not yet on the wheel."""
        if not self._live:
            return
        if hi > len(self._dead):
            size = max(hi, len(self._dead) * 3 // 2, 1024)
            more = size - len(self._dead)
            self._dead = np.concatenate([self._dead, np.zeros(more, bool)])
            self._moved = np.concatenate([self._moved, np.zeros(more, bool)])
            self._sched = np.concatenate([self._sched, np.zeros(more, bool)])
            self._check = np.concatenate([self._check, np.full(more, UNSCHEDULED, np.int64)])
        self._dead[lo:hi] = False
        self._moved[lo:hi] = self._sched[lo:hi] = True
        self._check[lo:hi] = UNSCHEDULED

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

    def _make_room(self, adding: int) -> None:
        """Compact before the store grows, when ended flows' records are a quarter
        of it: their room is used again instead."""
        store = self._store
        if self._n_dead * 4 >= store.used and store.used + adding > store.capacity:
            self._compact()

    def _group(self, rows: PacketBatch) -> None:
        """The compiled group-by; the store and the index grow when it asks."""
        self._make_room(len(rows))
        columns = tuple(
            np.ascontiguousarray(getattr(rows, name), kind) for name, kind in _ROW_COLUMNS
        )
        store, index, start = self._store, self._index, 0
        before = store.used
        where = np.empty(len(rows), np.int64) if self._live else None  # each row's record
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
                *(() if where is None else (where,)),
            )
            self.collisions += collisions
            if status == _STORE_FULL:
                store.reserve(store.used + len(rows) - start)
            elif status == _INDEX_FULL:
                index.grow(index.count + len(rows) - start)
            else:
                break
        self._added(before, store.used)
        if where is not None:
            self._moved[where] = self._sched[where] = True

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
        self._make_room(len(new))
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
        base = self._store.used
        # Each added record follows the key's latest record: the table's, or the one
        # added just before it.
        group = np.repeat(np.arange(len(keys)), last - first + 1)[keep]
        starts = np.r_[True, group[1:] != group[:-1]] if len(keep) else np.zeros(0, bool)
        before = np.where(found, t_idx, -1)[group]
        prev = np.where(starts, before, base + np.arange(len(keep)) - 1)
        self._store.append(new if len(keep) == len(new) else new.take(keep), prev)
        self._added(base, self._store.used)
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
        if self._live:
            self._moved[idx] = self._sched[idx] = True

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
        self._wheel, self._buckets = {}, []
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
        self._go_live()
        used = self._store.used
        rows = np.flatnonzero(self._moved[:used])
        self._moved[rows] = False
        if answered:
            st = self._store.array
            both = (st["pkts_a"][rows] > 0) & (st["pkts_b"][rows] > 0)
            rows = rows[both | (st["err_dir"][rows] >= 0)]
        step = piece or max(len(rows), 1)
        for lo in range(0, len(rows), step):
            yield from_records(_settled(self._records(self._with_earlier(rows[lo : lo + step]))))

    def _records(self, rows: np.ndarray) -> Records:
        """A copy of the stored records at `rows` (their `seq`: their places)."""
        taken = self._store.array[rows]
        out = Records({name: taken[name] for name in STORED})
        out["seq"] = rows.astype(np.int64)
        return out

    def _with_earlier(self, rows: np.ndarray) -> np.ndarray:
        """`rows` (sorted) and every earlier record of their keys, sorted."""
        prev = self._store.array["prev"]
        found, step = [rows], rows
        while len(step):
            step = prev[step]
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
        self._go_live()
        timeouts = (idle, grace, idle if half_open is None else half_open)
        used = self._store.used
        if timeouts != self._timeouts:  # the first call, or new timeouts: all anew
            self._timeouts = timeouts
            self._wheel, self._buckets = {}, []
            self._check[:used] = UNSCHEDULED
            self._sched[:used] = False
            self._schedule(self._index.entries())
        else:  # keys that changed since: sooner if they closed or stayed one-sided
            rows = np.flatnonzero(self._sched[:used])
            self._sched[rows] = False
            if len(rows):
                latest = self._index.find(self._store.array["hash"][rows])
                self._schedule(rows[latest == rows])
        now = now // BUCKET * BUCKET  # as of the start of its second, as the wheel sees it
        due_keys = self._due_keys(now)
        if not len(due_keys):
            return from_records(Records.empty())
        latest = self._index.find(due_keys)
        latest = latest[latest >= 0]  # not ended already
        latest = latest[self._check[latest] < now]  # not moved to a later bucket
        due = self._due(latest)
        over = due < now
        if limit is not None and over.sum() > limit:  # the rest at the next call
            over[np.flatnonzero(over)[limit:]] = False
        self._check[latest[~over]] = due[~over]
        self._add_to_wheel(self._store.array["hash"][latest[~over]], due[~over])
        return self._end(latest[over])

    def _end(self, latest: np.ndarray) -> Flows:
        """End the keys whose latest records are `latest`: their flows, settled."""
        if not len(latest):
            return from_records(Records.empty())
        rows = self._with_earlier(np.sort(latest))
        taken = self._records(rows)
        self._index.remove(latest)
        self._dead[rows] = True
        self._moved[rows] = self._sched[rows] = False
        self._n_dead += len(rows)
        if self._n_dead > max(len(self), self.COMPACT_AT):
            self._compact()
        return from_records(_settled(taken))

    def _due(self, latest: np.ndarray) -> np.ndarray:
        """When the keys whose latest records are `latest` will be over (ns)."""
        idle, grace, half_open = self._timeouts
        st = self._store.array
        fa, fb = st["flags_a"][latest], st["flags_b"][latest]
        closed = (((fa & FIN) != 0) & ((fb & FIN) != 0)) | (((fa | fb) & RST) != 0)
        one_sided = (st["pkts_a"][latest] == 0) | (st["pkts_b"][latest] == 0)
        wait = np.where(closed, grace, np.where(one_sided, min(half_open, idle), idle))
        return st["last_ts"][latest] + wait

    def _schedule(self, latest: np.ndarray) -> None:
        """Keys (by their latest records) that just changed: look at them when they
        could be over, if that is earlier than planned (a later time is found when
        the planned one comes)."""
        if not len(latest):
            return
        due = self._due(latest)
        sooner = due < self._check[latest]
        latest, due = latest[sooner], due[sooner]
        self._check[latest] = due
        self._add_to_wheel(self._store.array["hash"][latest], due)

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
        """Drop the records of ended flows from the store, in place (a slice at a
        time: memory stays at the store's, however many flows ended)."""
        if not self._n_dead:
            return
        used = self._store.used
        alive = ~self._dead[:used]
        keep = np.flatnonzero(alive)
        remap = np.cumsum(alive) - 1
        latest = remap[self._index.entries()]
        self._store.keep(keep)  # store order is seq order
        n = len(keep)
        prev = self._store.column("prev")
        prev[:] = np.where(prev >= 0, remap[np.maximum(prev, 0)], -1)
        for side in (self._moved, self._sched, self._check):
            side[:n] = side[keep]
        self._dead[:used] = False
        self._n_dead = 0
        self._index.rebuild(latest)

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
    *((name, np.int64) for name in ("frame", "ts", "wirelen")),
    *((name, np.int32) for name in ("proto", "sport", "dport", "tcp_flags")),
    ("tcp_seq", np.int64),
    *((name, np.int32) for name in ("icmp_type", "icmp_code", "icmp_req", "iface", "vlan")),
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
