"""Addresses as 128-bit integers, address entries, and the address -> role-set index.

Every address is held as an IPv6 integer; IPv4 addresses are IPv4-mapped
(``::ffff:a.b.c.d``), so one index serves both families. The index turns
possibly overlapping entries (CIDRs, ranges, single hosts) into disjoint
intervals, each carrying the set of names (roles) it belongs to, and answers
lookups with a binary search — vectorized for IPv4, the common case.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

V4_MAPPED = 0xFFFF << 32
V4_MAPPED_LO_TAG = 0xFFFF  # bits 32..47 of the low word

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?$"
)


def to_int(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    """The 128-bit integer of an address, IPv4 mapped into IPv6."""
    if addr.version == 4:
        return V4_MAPPED | int(addr)
    return int(addr)


def to_text(value: int) -> str:
    """The usual text form of a 128-bit address integer."""
    if value >> 32 == 0xFFFF:
        return str(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address(value))


@dataclass(frozen=True)
class Entry:
    """One inventory entry: an interval of addresses, or a hostname to resolve."""

    text: str
    first: int = 0
    last: int = -1
    hostname: str | None = None


def parse_entry(text: str) -> Entry:
    """Parse an address, CIDR, range `a-b` or hostname; ValueError says what is wrong."""
    text = str(text).strip()
    if "-" in text and not _looks_like_hostname_with_dash(text):
        first_s, _, last_s = text.partition("-")
        try:
            first = ipaddress.ip_address(first_s.strip())
            last = ipaddress.ip_address(last_s.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a range of two addresses (a-b)") from None
        if first.version != last.version:
            raise ValueError(f"range {text!r} mixes IPv4 and IPv6")
        if int(last) < int(first):
            raise ValueError(f"range {text!r} ends before it starts")
        return Entry(text, to_int(first), to_int(last))
    if "/" in text:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"{text!r} is not a CIDR block") from None
        return Entry(text, to_int(net.network_address), to_int(net.broadcast_address))
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        if _is_hostname(text):
            return Entry(text, hostname=text.lower().rstrip("."))
        raise ValueError(f"{text!r} is not an address, CIDR block, range or hostname") from None
    return Entry(text, to_int(addr), to_int(addr))


def _looks_like_hostname_with_dash(text: str) -> bool:
    first, _, last = text.partition("-")
    try:
        ipaddress.ip_address(first.strip())
        ipaddress.ip_address(last.strip())
    except ValueError:
        return _is_hostname(text)
    return False


def _is_hostname(text: str) -> bool:
    # The last label of a hostname is never all digits (RFC 3696, 2): this keeps
    # `10.0.0.300` and a mistyped range `10.0.0.5-10.0.0.300` from passing for names.
    return bool(_HOSTNAME.match(text)) and not text.rstrip(".").rpartition(".")[2].isdigit()


class AddressIndex:
    """Map addresses to small integers naming sets of labels (role names).

    `set_of(id)` gives the labels of a set id; id 0 is always the empty set.
    Built once from (label, first, last) intervals; lookups are binary searches.
    """

    def __init__(self, intervals: Iterable[tuple[str, int, int]]) -> None:
        events: dict[int, list[tuple[int, str]]] = {}
        for label, first, last in intervals:
            events.setdefault(first, []).append((1, label))
            events.setdefault(last + 1, []).append((-1, label))
        self.sets: list[frozenset[str]] = [frozenset()]
        set_ids: dict[frozenset[str], int] = {frozenset(): 0}
        active: dict[str, int] = {}
        starts: list[int] = []
        ids: list[int] = []
        for point in sorted(events):
            for delta, label in events[point]:
                active[label] = active.get(label, 0) + delta
                if active[label] == 0:
                    del active[label]
            current = frozenset(active)
            if current not in set_ids:
                set_ids[current] = len(self.sets)
                self.sets.append(current)
            if ids and ids[-1] == set_ids[current]:
                continue
            starts.append(point)
            ids.append(set_ids[current])
        self._starts = starts  # interval i covers [starts[i], starts[i+1])
        self._ids = ids
        v4 = [
            (s, i)
            for s, i in zip(starts, ids, strict=True)
            if V4_MAPPED <= s <= V4_MAPPED | 0xFFFFFFFF
        ]
        # IPv4 fast path: interval starts inside the IPv4-mapped block, plus the
        # set in force at its first address.
        at_v4_start = self.lookup_int(V4_MAPPED)
        v4_starts = [0] + [s - V4_MAPPED for s, _ in v4]
        v4_ids = [at_v4_start] + [i for _, i in v4]
        self._v4_starts = np.array(v4_starts, dtype=np.uint64)
        self._v4_ids = np.array(v4_ids, dtype=np.int32)

    def lookup_int(self, value: int) -> int:
        """The set id of one address given as a 128-bit integer."""
        pos = bisect.bisect_right(self._starts, value) - 1
        return self._ids[pos] if pos >= 0 else 0

    def lookup(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Set ids for columns of addresses (two uint64 halves)."""
        hi = np.asarray(hi, dtype=np.uint64)
        lo = np.asarray(lo, dtype=np.uint64)
        out = np.zeros(len(hi), dtype=np.int32)
        is_v4 = (hi == 0) & ((lo >> np.uint64(32)) == np.uint64(V4_MAPPED_LO_TAG))
        v4 = lo[is_v4] & np.uint64(0xFFFFFFFF)
        pos = np.searchsorted(self._v4_starts, v4, side="right") - 1
        out[is_v4] = self._v4_ids[pos]
        v6 = np.flatnonzero(~is_v4)
        if len(v6):  # IPv6: one binary search per distinct address
            pairs, inverse = np.unique(
                np.stack([hi[v6], lo[v6]], axis=1), axis=0, return_inverse=True
            )
            ids = [self.lookup_int((h << 64) | low) for h, low in pairs.tolist()]
            out[v6] = np.array(ids, dtype=np.int32)[inverse.reshape(-1)]
        return out

    def set_of(self, set_id: int) -> frozenset[str]:
        return self.sets[set_id]

    def set_id(self, labels: frozenset[str]) -> int:
        """The id of a set of labels, added when no interval holds exactly it (a
        flow's destination may hold roles beyond its address's: `policy.roles`)."""
        try:
            return self.sets.index(labels)
        except ValueError:
            self.sets.append(labels)
            return len(self.sets) - 1

    def addresses_of(self, label: str) -> list[tuple[int, int]]:
        """The intervals (first, last) of the addresses holding `label`."""
        ends = [*self._starts[1:], 1 << 128]
        return [
            (start, end - 1)
            for start, end, set_id in zip(self._starts, ends, self._ids, strict=True)
            if label in self.sets[set_id]
        ]

    def sets_between(self, first: int, last: int) -> set[int]:
        """The set ids in force anywhere in [first, last]."""
        lo = max(bisect.bisect_right(self._starts, first) - 1, 0)
        hi = bisect.bisect_right(self._starts, last)
        found = set(self._ids[lo:hi]) if self._starts else set()
        if not self._starts or first < self._starts[0]:
            found.add(0)
        return found

    def sizes(self) -> dict[str, int]:
        """How many addresses each label holds (for the specificity of a role)."""
        out: dict[str, int] = {}
        ends = [*self._starts[1:], 1 << 128][: len(self._starts)]
        for start, end, set_id in zip(self._starts, ends, self._ids, strict=True):
            for label in self.sets[set_id]:
                out[label] = out.get(label, 0) + end - start
        return out


def split_int(values: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Columns (hi, lo) of uint64 from 128-bit address integers."""
    hi = np.array([v >> 64 for v in values], dtype=np.uint64)
    lo = np.array([v & 0xFFFFFFFFFFFFFFFF for v in values], dtype=np.uint64)
    return hi, lo
