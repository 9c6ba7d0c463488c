"""Both kinds of key index answer alike: each key's latest record, by hash."""

from __future__ import annotations

import numpy as np
import pytest

from portmatrix.flows import keyindex
from portmatrix.flows.keyindex import HashIndex, SortedIndex
from portmatrix.flows.records import RECORD, Records
from portmatrix.flows.store import RecordStore

KINDS = [SortedIndex] + ([HashIndex] if keyindex.compiled is not None else [])


def store_of(hashes) -> RecordStore:
    store = RecordStore()
    rec = Records({k: np.zeros(len(hashes), t) for k, t in RECORD.items()})
    rec["hash"] = np.array(hashes, np.uint64)
    store.append(rec)
    return store


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_find_put_entries_rebuild(kind):
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 2**63, 5000, dtype=np.uint64)
    store = store_of(np.r_[keys, keys])  # each key twice: records k and 5000 + k
    index = kind(store)
    index.put(np.arange(5000))
    assert len(index) == 5000
    assert index.find(keys).tolist() == list(range(5000))
    index.put(np.arange(5000, 7500))  # later records of half the keys
    assert len(index) == 5000
    assert index.find(keys[:2500]).tolist() == list(range(5000, 7500))
    assert index.find(np.array([1, 2], np.uint64)).tolist() == [-1, -1]
    assert sorted(index.entries().tolist()) == [*range(2500, 5000), *range(5000, 7500)]
    index.rebuild(np.array([3, 4]))
    assert len(index) == 2
    assert index.find(keys[2:6]).tolist() == [-1, 3, 4, -1]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_removed_keys_are_gone_and_the_rest_still_found(kind):
    """Keys end in any order; those left stay reachable. Clustered hashes (one top
    byte) make long probe runs in the HashIndex, whose removal moves entries back."""
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 2**56, 6000, dtype=np.uint64) | np.uint64(0xAB << 56)
    keys = np.unique(keys)
    store = store_of(keys)
    index = kind(store)
    index.put(np.arange(len(keys)))
    alive = np.ones(len(keys), bool)
    for _ in range(6):
        gone = rng.choice(np.flatnonzero(alive), size=alive.sum() // 3, replace=False)
        index.remove(gone)
        alive[gone] = False
        assert len(index) == alive.sum()
        found = index.find(keys)
        assert (found[~alive] == -1).all()
        assert found[alive].tolist() == np.flatnonzero(alive).tolist()
    assert sorted(index.entries().tolist()) == np.flatnonzero(alive).tolist()
