"""The record store: grows in place keeping its records, gives memory back, and
travels to other processes (pickled) as a copy of its records."""

from __future__ import annotations

import pickle

import numpy as np

from portmatrix.flows import store as store_module
from portmatrix.flows.records import RECORD, Records
from portmatrix.flows.store import DTYPE, STORED, RecordStore


def some(n: int, start: int = 0) -> Records:
    out = Records({k: np.zeros(n, t) for k, t in RECORD.items()})
    out["hash"] = np.arange(start, start + n, dtype=np.uint64)
    out["pkts_a"] = np.arange(n, dtype=np.int64) * 3
    return out


def test_every_record_column_is_stored_and_seq_is_the_place():
    assert set(STORED) == set(RECORD) - {"seq"}
    assert set(DTYPE.names) == set(STORED) | {"prev"}
    store = RecordStore()
    store.append(some(5))
    rec = store.records()
    assert rec["seq"].tolist() == [0, 1, 2, 3, 4]


def test_growth_keeps_the_records_and_views_write_through():
    store = RecordStore()
    for k in range(40):
        store.append(some(1000, start=1000 * k))
    assert len(store) == 40_000
    assert store.column("hash").tolist() == list(range(40_000))
    store.column("pkts_b")[7] = 99
    assert store.records()["pkts_b"][7] == 99


def test_without_a_reservation_a_plain_array_doubles(monkeypatch):
    monkeypatch.setattr(store_module, "_NORESERVE", None)
    store = RecordStore()
    store.append(some(3000))
    assert store._map is None and store.capacity >= 3000
    store.append(some(3000, start=3000))
    assert store.column("hash").tolist() == list(range(6000))
    store.release(0, 6000)  # nothing to give back: a no-op


def test_keep_and_release():
    store = RecordStore()
    store.append(some(50_000))
    store.keep(np.array([10, 3, 49_999]))
    assert store.column("hash").tolist() == [10, 3, 49_999]
    store.append(some(2, start=7))
    assert store.column("hash").tolist() == [10, 3, 49_999, 7, 8]


def test_released_pages_leave_the_process():
    store = RecordStore()
    n = (64 << 20) // DTYPE.itemsize  # 64 MB of records
    store.append(some(n))
    before = _rss()
    store.release(0, n)
    assert before - _rss() > 48 << 20


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * store_module.PAGE


def test_pickled_it_is_a_copy_of_the_records():
    store = RecordStore()
    store.append(some(10))
    back = pickle.loads(pickle.dumps(store))
    assert back.column("pkts_a").tolist() == store.column("pkts_a").tolist()
    back.append(some(1, start=99))
    assert len(back) == 11 and len(store) == 10
