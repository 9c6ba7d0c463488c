"""Flow tables merge associatively: a packet sequence cut into parts at arbitrary
points, each part built into its own table, and the tables merged in order (in
any grouping) give exactly the table of the whole sequence. Feeding the parts
to one table batch by batch gives it too."""

from __future__ import annotations

import copy
from itertools import pairwise

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portmatrix.decode import decode
from portmatrix.flows.model import Flows
from portmatrix.flows.table import FlowTable
from portmatrix.testing.captures import raw_batch
from support.flow_events import events, packet


def decoded(evts):
    rows, counts = decode(raw_batch([packet(e) for e in evts]))
    counts.check()
    return rows


def table_of(rows) -> FlowTable:
    table = FlowTable()
    table.update(rows)
    return table


def canonical(flows: Flows) -> list[tuple]:
    names = sorted(flows.cols)
    return sorted(zip(*(flows.cols[k].tolist() for k in names), strict=True))


def cut_points(data, n: int) -> list[int]:
    cuts = data.draw(st.lists(st.integers(0, n), max_size=5), label="cuts")
    return [0, *sorted(cuts), n]


def grouped(data, parts: list, lo: int, hi: int) -> FlowTable:
    """Merge parts[lo:hi] in order, grouped by a drawn binary tree."""
    if hi - lo == 1:
        return table_of(parts[lo])
    mid = data.draw(st.integers(lo + 1, hi - 1), label="split")
    left = grouped(data, parts, lo, mid)
    left.merge(grouped(data, parts, mid, hi))
    return left


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evts=events, data=st.data())
def test_split_merge_equals_whole(evts, data):
    rows = decoded(evts)
    n = len(rows)
    whole = table_of(rows).finish()
    expect = canonical(whole)
    bounds = cut_points(data, n)
    parts = [rows.take(np.arange(a, b)) for a, b in pairwise(bounds)]

    # Left fold: ((a + b) + c) + d
    tables = [table_of(p) for p in parts]
    left = copy.deepcopy(tables[0])
    for t in tables[1:]:
        left.merge(copy.deepcopy(t))
    assert canonical(left.finish()) == expect

    # Right-nested: a + (b + (c + d)); merge mutates, so work on copies.
    right = copy.deepcopy(tables[-1])
    for t in reversed(tables[:-1]):
        outer = copy.deepcopy(t)
        outer.merge(right)
        right = outer
    assert canonical(right.finish()) == expect

    # Any grouping.
    assert canonical(grouped(data, parts, 0, len(parts)).finish()) == expect

    # One table fed batch by batch.
    fed = FlowTable()
    for p in parts:
        fed.update(p)
    assert canonical(fed.finish()) == expect
    assert whole.fragments_unresolved == 0


@settings(max_examples=50, deadline=None)
@given(evts=events)
def test_finish_does_not_depend_on_how_often_it_runs(evts):
    table = table_of(decoded(evts))
    first = canonical(table.finish())
    assert canonical(table.finish()) == first
