"""Eviction through the timer wheel ends exactly the flows a full scan would: at
every tick, the keys that leave the table are those whose latest record had
been quiet longer than its timeout (grace when closed, half-open when
one-sided, idle otherwise) by the start of the tick's second (the wheel's
buckets are seconds), checked here one key at a time in plain Python."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portmatrix.decode import decode
from portmatrix.flows.records import FIN, RST
from portmatrix.flows.table import FlowTable
from portmatrix.testing.captures import T0, raw_batch
from support.flow_events import TUPLES, packet

SECOND = 1_000_000_000
IDLE, GRACE, HALF_OPEN = 20 * SECOND, 3 * SECOND, 7 * SECOND

event = st.tuples(
    st.integers(0, len(TUPLES) - 1),
    st.integers(0, 11),
    st.booleans(),
    st.integers(0, 2),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("packets"), st.integers(0, 30), st.lists(event, min_size=1, max_size=4)),
        st.tuples(st.just("tick"), st.integers(0, 30), st.just([])),
    ),
    min_size=1,
    max_size=30,
)


def over_by_scan(table: FlowTable, now: int) -> set[int]:
    """The open keys a full scan ends at `now`, one key at a time."""
    rec = table.rec
    out = set()
    for latest in table.open_idx.tolist():
        key = int(rec["hash"][latest])
        fa, fb = int(rec["flags_a"][latest]), int(rec["flags_b"][latest])
        closed = (fa & FIN and fb & FIN) or (fa | fb) & RST
        one_sided = rec["pkts_a"][latest] == 0 or rec["pkts_b"][latest] == 0
        timeout = GRACE if closed else HALF_OPEN if one_sided else IDLE
        if now - int(rec["last_ts"][latest]) > timeout:
            out.add(key)
    return out


def open_keys(table: FlowTable) -> set[int]:
    return set(table.rec["hash"][table.open_idx].tolist())


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=steps)
def test_the_wheel_ends_what_a_full_scan_would(compiled, plan):
    table = FlowTable(compiled=compiled)
    now, frame = T0, 1
    table.evict(now, IDLE, GRACE, HALF_OPEN)  # the timeouts are known from the start
    for what, gap, evts in plan:
        now += gap * SECOND // 2
        if what == "packets":
            batch = raw_batch([packet(e) for e in evts], start=now, first_frame=frame)
            frame += len(evts)
            table.update(decode(batch)[0])
            now = int(batch.ts.max())
            continue
        expected = over_by_scan(table, now // SECOND * SECOND)
        before = open_keys(table)
        records = len(table)
        gone = table.evict(now, IDLE, GRACE, HALF_OPEN)
        after = open_keys(table)
        assert before - after == expected
        assert len(gone) <= records - len(table)  # settling may join records, never add
        assert (len(gone) == 0) == (not expected)
