"""The grouping helpers against slow, obvious references (Python sets and sorts)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from portmatrix.findings.columns import dense, distinct_per, first_k, port_ranges, unique

small = st.lists(st.tuples(st.integers(0, 5), st.integers(-3, 3)), min_size=1, max_size=60)
wide = st.lists(
    st.tuples(st.integers(0, 2**64 - 1), st.sampled_from([0, 7, 2**63])), min_size=1, max_size=60
)


def reference_ids(rows):
    """Equal tuples, equal ids; different tuples, different ids."""
    return {i: t for i, t in enumerate(rows)}


def check_dense(rows, dtypes):
    cols = [np.array([r[k] for r in rows], dtype=d) for k, d in enumerate(dtypes)]
    ids, n, rep = dense(*cols)
    assert n == len(set(rows))
    for i, a in enumerate(rows):
        assert rows[rep[ids[i]]] == a  # the representative holds the same tuple
        for j, b in enumerate(rows):
            assert (ids[i] == ids[j]) == (a == b)
    return ids


@given(small)
def test_dense_small_numbers_in_sorted_order(rows):
    ids = check_dense(rows, (np.int64, np.int64))
    order = sorted(set(rows))
    assert [order[k] for k in ids] == rows  # packed: numbered in sorted order


@settings(max_examples=50)
@given(wide)
def test_dense_wide_numbers_by_hash_exactly(rows):
    check_dense(rows, (np.uint64, np.uint64))


@given(st.lists(st.integers(0, 2**64 - 1) | st.integers(0, 3), min_size=0, max_size=80))
def test_unique(values):
    keys = np.array(values, dtype=np.uint64)
    first, inverse, counts = unique(keys)
    distinct = sorted(set(values))
    assert keys[first].tolist() == distinct
    assert [distinct[k] for k in inverse] == values
    assert counts.tolist() == [values.count(v) for v in distinct]


@given(small)
def test_distinct_per_group(rows):
    group = np.array([g for g, _ in rows])
    value = np.array([v for _, v in rows])
    got = distinct_per(group, value, 6)
    assert got.tolist() == [len({v for g, v in rows if g == k}) for k in range(6)]


def test_first_k_of_each_sorted_group():
    group = np.array([0, 0, 0, 1, 2, 2, 2, 2])
    assert first_k(group, 2).tolist() == [0, 1, 3, 4, 5]


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 40)), min_size=1, max_size=80))
def test_port_ranges_are_the_runs(rows):
    group = np.array([g for g, _ in rows])
    port = np.array([p for _, p in rows])
    runs = port_ranges(group, np.full(len(rows), 6), port, 3, shown=100)
    for g in range(3):
        expected, ports = [], sorted({p for k, p in rows if k == g})
        for p in ports:
            if expected and expected[-1][2] == p - 1:
                expected[-1] = (6, expected[-1][1], p)
            else:
                expected.append((6, p, p))
        assert runs[g] == expected


def test_port_ranges_say_how_many_were_left_out():
    port = np.arange(0, 40, 2)  # 20 runs of one port
    (runs,) = port_ranges(np.zeros(20, np.int64), np.full(20, 17), port, 1, shown=3)
    assert runs == [(17, 0, 0), (17, 2, 2), (17, 4, 4), (0, -1, 17)]
