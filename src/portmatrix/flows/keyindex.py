"""The flow table's index: each open key (by its 64-bit hash) to its latest record.

Two kinds with one interface: `SortedIndex`, sorted numpy arrays (the reference,
and what runs without a C compiler), and `HashIndex`, the open-addressing table
the compiled group-by (`_table.c`) probes for every packet. Both answer by hash:
two keys of one hash (a 64-bit collision) are told apart by the table's callers.
"""

from __future__ import annotations

import numpy as np

from portmatrix.flows.store import RecordStore

try:
    from portmatrix.flows import _table as compiled
except ImportError:  # built without a C compiler
    compiled = None

LOAD = 0.7  # a HashIndex holds at most this share of its slots


class SortedIndex:
    def __init__(self, store: RecordStore) -> None:
        self.store = store
        self.hashes = np.zeros(0, np.uint64)  # sorted
        self.records = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self.hashes)

    def find(self, keys: np.ndarray) -> np.ndarray:
        """The latest record of each key, -1 for keys not open."""
        if not len(self.hashes):
            return np.full(len(keys), -1, np.int64)
        pos = np.minimum(np.searchsorted(self.hashes, keys), len(self.hashes) - 1)
        return np.where(self.hashes[pos] == keys, self.records[pos], -1)

    def put(self, records: np.ndarray) -> None:
        """Each of these records is now its key's latest (keys distinct)."""
        keys = self.store.column("hash")[records]
        pos = np.searchsorted(self.hashes, keys)
        there = np.zeros(len(keys), bool)
        if len(self.hashes):
            there = self.hashes[np.minimum(pos, len(self.hashes) - 1)] == keys
        self.records[pos[there]] = records[there]
        new = np.flatnonzero(~there)
        order = new[np.argsort(keys[new], kind="stable")]
        self.hashes = np.insert(self.hashes, pos[order], keys[order])
        self.records = np.insert(self.records, pos[order], records[order])

    def entries(self) -> np.ndarray:
        """The latest record of every open key."""
        return self.records

    def remove(self, records: np.ndarray) -> None:
        """Their keys are over (each record its key's latest): out of the index."""
        keys = self.store.column("hash")[records]
        pos = np.minimum(np.searchsorted(self.hashes, keys), max(len(self.hashes) - 1, 0))
        if not len(self.hashes):
            return
        pos = pos[(self.hashes[pos] == keys) & (self.records[pos] == records)]
        self.hashes = np.delete(self.hashes, pos)
        self.records = np.delete(self.records, pos)

    def rebuild(self, records: np.ndarray) -> None:
        """Only these records, each its key's latest."""
        keys = self.store.column("hash")[records]
        order = np.argsort(keys, kind="stable")
        self.hashes, self.records = keys[order], records[order].astype(np.int64)


class HashIndex:
    """Slots of (top 32 bits of the hash, record + 1), grown by doubling."""

    def __init__(self, store: RecordStore) -> None:
        self.store = store
        self.slots = np.zeros(1024, np.uint64)
        self.count = 0

    def __len__(self) -> int:
        return self.count

    @property
    def limit(self) -> int:
        return int(len(self.slots) * LOAD)

    def grow(self, need: int) -> None:
        """Room for `need` keys."""
        size = len(self.slots)
        while need > size * LOAD:
            size *= 2
        if size > len(self.slots):
            slots = np.zeros(size, np.uint64)
            compiled.regrow(self.slots, slots)
            self.slots = slots

    def find(self, keys: np.ndarray) -> np.ndarray:
        out = np.empty(len(keys), np.int64)
        keys = np.ascontiguousarray(keys, np.uint64)
        compiled.find(self.store.array, self.store.used, self.slots, keys, out)
        return out

    def put(self, records: np.ndarray) -> None:
        self.grow(self.count + len(records))
        records = np.ascontiguousarray(records, np.int64)
        self.count += compiled.put(self.store.array, self.store.used, self.slots, records)

    def entries(self) -> np.ndarray:
        out = np.empty(self.count, np.int64)
        compiled.entries(self.slots, out)
        return out

    def remove(self, records: np.ndarray) -> None:
        records = np.ascontiguousarray(records, np.int64)
        self.count -= compiled.remove(self.store.array, self.store.used, self.slots, records)

    def rebuild(self, records: np.ndarray) -> None:
        size = 1024
        while len(records) > size * LOAD:
            size *= 2
        self.slots = np.zeros(size, np.uint64)
        self.count = 0
        self.put(records)
