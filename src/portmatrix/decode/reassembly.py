"""IP fragments (IPv4 and IPv6 alike): later fragments carry no transport header,
so they are given the ports of their datagram's first fragment and join its flow,
and each datagram is followed until its pieces cover it, so the damage is counted.

Fragments of one datagram share (source, destination, protocol, identification).
A datagram counts as one packet of its flow (at its first fragment), with the
bytes of all its fragments: what tshark and Zeek count, having reassembled it.
Later fragments that arrive before their first (senders and networks reorder
them) wait for it; one still waiting after TIMEOUT of capture time, or pushed
out of the bounded memory, joins a port-0 flow and is counted as unresolved.
Datagrams whose pieces never cover them (a fragment lost, or not captured) are
counted as incomplete, those with overlapping pieces (an evasion trick, and
invalid in IPv6, RFC 5722) as overlapping. Memory is bounded: at most MEMORY
first fragments, pieces and waiting fragments, the oldest dropped first.
"""

from __future__ import annotations

import numpy as np

from portmatrix.decode import batch as b
from portmatrix.decode.batch import PacketBatch
from portmatrix.decode.keyhash import mix

MEMORY = 1 << 16  # first fragments, pieces of open datagrams, waiting fragments
TIMEOUT = 60 * 10**9  # ns of capture time (RFC 8200's 60 s; IPv4 stacks wait 30-60 s)
_GROUP = 1 << 20  # above any fragment's end (65535 + 65535): group offsets for a cummax


def _key(rows: PacketBatch, sel: np.ndarray) -> np.ndarray:
    word = (rows.proto[sel].astype(np.uint64) << np.uint64(32)) | rows.frag_id[sel].astype(
        np.uint64
    )
    return mix(rows.src_hi[sel], rows.src_lo[sel], rows.dst_hi[sel], rows.dst_lo[sel], word)


def _pair(rows: PacketBatch, sel: np.ndarray) -> np.ndarray:
    """The (source, destination, protocol) of rows: the port-0 flow a fragment that
    never meets its first fragment joins."""
    word = rows.proto[sel].astype(np.uint64) | np.uint64(1 << 40)  # never a datagram's word
    return mix(rows.src_hi[sel], rows.src_lo[sel], rows.dst_hi[sel], rows.dst_lo[sel], word)


def fragment_keys(rows: PacketBatch) -> np.ndarray:
    """What the fragments among `rows` can be matched on by fragments around them
    (their datagrams; for later fragments also the port-0 flow they join if
    their first fragment never comes), distinct and sorted."""
    frags = np.flatnonzero((rows.frag != b.NOT_FRAGMENT) & (rows.kind == b.PACKET))
    later = frags[rows.frag[frags] >= b.LATER_FRAGMENT]
    return np.unique(np.concatenate([_key(rows, frags), _pair(rows, later)]))


class FragmentPorts:
    def __init__(self) -> None:
        self.keys = np.zeros(0, np.uint64)  # first fragments, sorted ...
        self.values = np.zeros((0, 4), np.int64)  # ... sport, dport, icmp_req, ts
        self.pieces = {  # of datagrams not complete yet
            "key": np.zeros(0, np.uint64),
            "off": np.zeros(0, np.int64),
            "end": np.zeros(0, np.int64),
            "last": np.zeros(0, bool),
            "ts": np.zeros(0, np.int64),
        }
        self.waiting: PacketBatch | None = None  # later fragments before their first
        self.unresolved = 0  # fragments that never met their first: in port-0 flows
        self.incomplete = 0  # datagrams never covered by their pieces
        self.overlapping = 0  # datagrams whose pieces overlap

    def resolve(self, rows: PacketBatch) -> PacketBatch:
        """The rows, later fragments given their datagram's ports (and JOINED); those
        whose first fragment has not come yet are held back, and earlier held ones
        whose first has come now are added (rows stay in order within a flow)."""
        frags = np.flatnonzero((rows.frag != b.NOT_FRAGMENT) & (rows.kind == b.PACKET))
        if not len(frags) and self.waiting is None:
            return rows
        now = int(rows.ts.max()) if len(rows) else 0
        keys = _key(rows, frags)
        again = self._again(rows, frags, keys)
        self._add(rows, frags, keys)
        self._settle(now)
        self._remember(rows, frags, keys, now)
        later = frags[rows.frag[frags] >= b.LATER_FRAGMENT]
        rows.frag[again] = b.JOINED_FRAGMENT  # its datagram is counted already
        candidates = rows.take(later)
        expired = PacketBatch.empty()
        if self.waiting is not None:  # those waiting longer than TIMEOUT are given up
            old = self.waiting.ts < now - TIMEOUT
            expired = self.waiting.take(np.flatnonzero(old))
            candidates = self.waiting.take(np.flatnonzero(~old)).concat(candidates)
            self.waiting = None
        found, pos = self._find(_key(candidates, np.arange(len(candidates))))
        joined = candidates.take(np.flatnonzero(found))
        at = pos[found]
        joined.sport[:], joined.dport[:] = self.values[at, 0], self.values[at, 1]
        joined.icmp_req[:] = self.values[at, 2]
        joined.frag[:] = b.JOINED_FRAGMENT
        lost = candidates.take(np.flatnonzero(~found))
        wait = np.ones(len(lost), bool)
        wait[: max(len(lost) - MEMORY, 0)] = False  # the oldest beyond MEMORY give up
        if wait.any():
            self.waiting = lost.take(np.flatnonzero(wait))
        given_up = expired.concat(lost.take(np.flatnonzero(~wait)))
        self.unresolved += len(given_up)
        keep = np.ones(len(rows), bool)
        keep[later] = False
        out = rows.take(np.flatnonzero(keep)) if len(later) else rows
        if len(joined) or len(given_up):  # back in frame order
            out = out.concat(joined).concat(given_up)
            out = out.take(np.argsort(out.frame, kind="stable"))
        return out

    def flush(self) -> PacketBatch:
        """The end of the input: fragments still waiting (they join port-0 flows) and
        datagrams still open are given up and counted."""
        self._settle(0, final=True)
        waiting, self.waiting = self.waiting, None
        if waiting is None:
            return PacketBatch.empty()
        self.unresolved += len(waiting)
        return waiting

    def renumber(self, frames: int) -> None:
        """The rows held were `frames` frames later in their file than numbered."""
        if self.waiting is not None:
            self.waiting.frame += frames

    def open_keys(self) -> np.ndarray:
        """What rows after these may be matched on (`fragment_keys`): remembered first
        fragments, pieces of open datagrams, fragments still waiting."""
        held = [self.keys, self.pieces["key"]]
        if self.waiting is not None:
            held.append(fragment_keys(self.waiting))
        return np.unique(np.concatenate(held))

    def counts(self) -> dict[str, int]:
        """The damage seen, named as Flows names it."""
        return {
            "fragments_unresolved": self.unresolved,
            "fragments_incomplete": self.incomplete,
            "fragments_overlapping": self.overlapping,
        }

    def add_counts(self, other: FragmentPorts) -> None:
        self.unresolved += other.unresolved
        self.incomplete += other.incomplete
        self.overlapping += other.overlapping

    def _again(self, rows, frags, keys) -> np.ndarray:
        """First fragments of a datagram whose first fragment came already (a
        duplicate: a retransmission, or a span port mirroring it twice)."""
        first = rows.frag[frags] == b.FIRST_FRAGMENT
        f, k = frags[first], keys[first]
        open_firsts = self.pieces["key"][self.pieces["off"] == 0]
        seen = np.isin(k, open_firsts)
        _, once = np.unique(k, return_index=True)
        repeated = np.ones(len(k), bool)
        repeated[once] = False
        return f[seen | repeated]

    def _find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.minimum(np.searchsorted(self.keys, keys), max(len(self.keys) - 1, 0))
        if not len(self.keys):
            return np.zeros(len(keys), bool), pos
        return self.keys[pos] == keys, pos

    def _remember(self, rows, frags, keys, now) -> None:
        """First fragments' ports, the newest per datagram, none older than TIMEOUT."""
        first = rows.frag[frags] == b.FIRST_FRAGMENT
        f = frags[first]
        new = np.stack([rows.sport[f], rows.dport[f], rows.icmp_req[f], rows.ts[f]], axis=1)
        keys = np.concatenate([self.keys, keys[first]])
        values = np.concatenate([self.values, new.astype(np.int64)])
        recent = values[:, 3] >= now - TIMEOUT
        keys, values = keys[recent][-MEMORY:], values[recent][-MEMORY:]
        order = np.argsort(keys, kind="stable")
        keys, values = keys[order], values[order]
        last = np.r_[keys[1:] != keys[:-1], True] if len(keys) else np.zeros(0, bool)
        self.keys, self.values = keys[last], values[last]

    def _add(self, rows, frags, keys) -> None:
        p = self.pieces
        off = rows.frag_off[frags].astype(np.int64)
        p["key"] = np.concatenate([p["key"], keys])
        p["off"] = np.concatenate([p["off"], off])
        p["end"] = np.concatenate([p["end"], off + rows.frag_len[frags]])
        p["last"] = np.concatenate([p["last"], rows.frag[frags] == b.LAST_FRAGMENT])
        p["ts"] = np.concatenate([p["ts"], rows.ts[frags]])

    def _settle(self, now: int, final: bool = False) -> None:
        """Close the datagrams whose pieces cover them, those timed out (all of them
        when `final`), and the oldest beyond MEMORY pieces; count the damage."""
        p = self.pieces
        order = np.lexsort((p["end"], p["off"], p["key"]))
        for k in p:
            p[k] = p[k][order]
        key, off, end = p["key"], p["off"], p["end"]
        n = len(key)
        if not n:
            return
        start = np.r_[True, key[1:] != key[:-1]]
        starts = np.flatnonzero(start)
        group = np.cumsum(start) - 1
        reach = np.maximum.accumulate(end + group * _GROUP) - group * _GROUP
        before = np.where(start, 0, np.r_[0, reach[:-1]])  # covered before this piece
        same = ~start & (off == np.r_[-1, off[:-1]]) & (end == np.r_[-1, end[:-1]])
        gap = off > before
        overlap = ~start & ~same & (off < before)
        whole = np.maximum.reduceat(end, starts)
        last_end = np.maximum.reduceat(np.where(p["last"], end, -1), starts)
        done = ~np.logical_or.reduceat(gap, starts) & (last_end >= 0) & (last_end == whole)
        bad = np.logical_or.reduceat(overlap, starts)
        oldest = np.minimum.reduceat(p["ts"], starts)
        expired = ~done & ((oldest < now - TIMEOUT) | final)
        sizes = np.diff(np.r_[starts, n])
        # Beyond MEMORY pieces: the datagrams that started longest ago go first.
        by_age = np.argsort(oldest, kind="stable")[::-1]
        kept = np.cumsum(np.where(done | expired, 0, sizes)[by_age])
        crowded = np.zeros(len(starts), bool)
        crowded[by_age[kept > MEMORY]] = True
        gone = done | expired | crowded
        self.overlapping += int((bad & gone).sum())
        self.incomplete += int((gone & ~done).sum())
        keep = ~gone[group]
        for k in p:
            p[k] = p[k][keep]
