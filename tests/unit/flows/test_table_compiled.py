"""The compiled group-by (flows/_table.c) against the numpy one (the reference).

Fed the same packet rows, batch by batch, a compiled table and a numpy table
must hold the very same records (every column, compared per key in record
order) and finish into the very same flows: on every real capture, on rows a
fuzzer makes up to stress the edges (port reuse, ISNs, ICMP errors, fragments,
VLANs, every ICMP type), and when tables of both kinds are merged.
"""

from __future__ import annotations

import copy
import os
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portmatrix.decode import batch as b
from portmatrix.decode import decode
from portmatrix.decode.batch import PacketBatch
from portmatrix.decode.transport import ICMP, ICMPV6, TCP, UDP
from portmatrix.flows import keyindex
from portmatrix.flows.records import records_from_rows
from portmatrix.flows.store import DTYPE, STORED
from portmatrix.flows.table import FlowTable
from portmatrix.sources.capture import Capture
from support.paths import REPO

CAPTURES = sorted(
    p
    for p in [
        *(REPO.parent / "shared" / "pcaps").glob("*.pcap*"),
        *(REPO / "captures").glob("*.pcap*"),
    ]
    if "invalid-version" not in p.name  # a pcap header nothing reads
)

pytestmark = pytest.mark.skipif(
    keyindex.compiled is None and not os.environ.get("CI"), reason="built without a C compiler"
)


def test_built_where_ci_runs():
    assert keyindex.compiled is not None, "the C extension portmatrix.flows._table was not built"


def test_the_struct_is_the_stores_dtype():
    layout, size = keyindex.compiled.layout()
    assert size == DTYPE.itemsize
    assert [name for name, _, _ in layout] == list(DTYPE.names)
    for name, offset, width in layout:
        kind, at = DTYPE.fields[name][:2]
        assert (at, kind.itemsize) == (offset, width), name


def by_key(table: FlowTable) -> dict[str, np.ndarray]:
    """The table's records in (key, order within the key) order."""
    rec = table.rec
    order = np.lexsort((rec["seq"], rec["hash"]))
    return {name: rec[name][order] for name in STORED}


def assert_same_tables(fast: FlowTable, ref: FlowTable) -> None:
    a, b_ = by_key(fast), by_key(ref)
    for name in a:
        np.testing.assert_array_equal(a[name], b_[name], err_msg=name)
    assert sorted(open_hashes(fast)) == sorted(open_hashes(ref))
    assert_chained(fast)
    assert_chained(ref)


def assert_chained(table: FlowTable) -> None:
    """Each record's `prev` is its key's record before it (-1: its first), whichever
    way the records were made: live watching finds a key's records by it."""
    rec = table.rec
    prev = table._store.column("prev")
    order = np.lexsort((rec["seq"], rec["hash"]))
    h = rec["hash"][order]
    first = np.r_[True, h[1:] != h[:-1]]
    before = np.r_[-1, order[:-1]][: len(order)]
    np.testing.assert_array_equal(prev[order], np.where(first, -1, before))


def assert_same_flows(fast: FlowTable, ref: FlowTable) -> None:
    one, two = fast.finish(), ref.finish()
    assert set(one.cols) == set(two.cols)
    for name in one.cols:
        assert one[name].dtype == two[name].dtype, name
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)


def open_hashes(table: FlowTable) -> list[int]:
    """The open keys, whichever index holds them."""
    return table.rec["hash"][table.open_idx].tolist()


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_same_records_as_numpy_on_real_captures(path):
    fast, ref = FlowTable(), FlowTable(compiled=False)
    for raw in Capture(str(path)).batches():
        rows, _ = decode(raw)
        fast.update(rows)
        ref.update(rows)
        assert_same_tables(fast, ref)
    assert_same_flows(fast, ref)


# Made-up rows: a few endpoints and ports, so keys repeat and connections meet.
ADDRS = (0xFFFF0A000001, 0xFFFF0A000002, 0xFFFF0A000003)
ROW = st.fixed_dictionaries(
    {
        "src": st.integers(0, 2),
        "dst": st.integers(0, 2),
        "v6": st.booleans(),
        "proto": st.sampled_from((TCP, TCP, TCP, UDP, ICMP, ICMPV6, 132)),
        "sport": st.sampled_from((80, 40000, 40001)),
        "dport": st.sampled_from((80, 40000)),
        "flags": st.sampled_from((0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x03, 0x06, 0)),
        "seq": st.sampled_from((0, 1000, 2000)),  # a SYN's: decoders read it with the flags
        "icmp_type": st.integers(-1, 255),
        "icmp_code": st.integers(-1, 15),
        "icmp_req": st.sampled_from((-1, 8, 13, 128, 9)),
        "kind": st.sampled_from((b.PACKET, b.PACKET, b.PACKET, b.ICMP_ERROR)),
        "frag": st.sampled_from((b.NOT_FRAGMENT,) * 4 + (b.FIRST_FRAGMENT, b.JOINED_FRAGMENT)),
        "vlan": st.sampled_from((-1, -1, 0, 7, 4095)),
        "encap": st.sampled_from((0, 0, 2, 3)),
        "iface": st.integers(0, 3),
        "wirelen": st.integers(0, 1600),
        "dt": st.integers(-5, 50),  # time steps, sometimes backwards
    }
)


def rows_of(events: list[dict], first_frame: int = 1) -> PacketBatch:
    n = len(events)
    col = {k: np.array([e[k] for e in events], np.int64) for k in events[0]} if n else {}

    def get(k, kind=np.int64):
        return col[k].astype(kind) if n else np.zeros(0, kind)

    hi = np.where(get("v6") == 1, 0x20010DB8 << 32, 0).astype(np.uint64)
    lo = np.array(ADDRS, np.uint64)
    proto = get("proto")
    tcp = proto == TCP
    return PacketBatch(
        frame=np.arange(first_frame, first_frame + n, dtype=np.int64),
        ts=10**18 + np.cumsum(get("dt")) * 1000,
        iface=get("iface", np.int32),
        wirelen=get("wirelen"),
        vlan=get("vlan", np.int32),
        encap=get("encap", np.uint8),
        src_hi=hi,
        src_lo=lo[get("src")] if n else np.zeros(0, np.uint64),
        dst_hi=hi,
        dst_lo=lo[get("dst")] if n else np.zeros(0, np.uint64),
        proto=proto,
        sport=get("sport"),
        dport=get("dport"),
        tcp_flags=np.where(tcp, get("flags"), 0),
        tcp_seq=np.where(tcp & ((get("flags") & 2) != 0), get("seq"), -1),
        icmp_type=get("icmp_type"),
        icmp_code=get("icmp_code"),
        icmp_req=get("icmp_req"),
        kind=get("kind", np.uint8),
        frag=get("frag", np.uint8),
        frag_id=np.zeros(n, np.int64),
        frag_off=np.zeros(n, np.int32),
        frag_len=np.zeros(n, np.int32),
    )


def group_both(parts: list[PacketBatch], file_id: int = 0) -> tuple[FlowTable, FlowTable]:
    """The parts grouped into a compiled table and a numpy one (no fragment
    tracking: the rows go straight to the group-by)."""
    fast, ref = FlowTable(file_id=file_id), FlowTable(file_id=file_id, compiled=False)
    for rows in parts:
        fast._group(rows)
        ref.merge_records(records_from_rows(rows, file_id))
        assert_same_tables(fast, ref)
    return fast, ref


def cut(data, rows: PacketBatch) -> list[PacketBatch]:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(rows)), max_size=4), label="cuts"))
    bounds = [0, *cuts, len(rows)]
    return [rows.take(np.arange(lo, hi)) for lo, hi in pairwise(bounds)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(ROW, min_size=1, max_size=60), data=st.data())
def test_fuzz_same_records_as_numpy(events, data):
    rows = rows_of(events)
    fast, ref = group_both(cut(data, rows))
    assert_same_flows(fast, ref)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(one=st.lists(ROW, max_size=30), two=st.lists(ROW, min_size=1, max_size=30))
def test_fuzz_merged_tables_of_both_kinds(one, two):
    # Tables built either way merge into either kind with the same result.
    first = rows_of(one) if one else rows_of(two).take(np.arange(0))
    second = rows_of(two, first_frame=len(one) + 1)
    fast1, ref1 = group_both([first])
    fast2, ref2 = group_both([second], file_id=1)
    expect = copy.deepcopy(ref1)
    expect.merge(copy.deepcopy(ref2))
    for left, right in ((fast1, fast2), (fast1, ref2), (ref1, fast2)):
        merged = copy.deepcopy(left)
        merged.merge(copy.deepcopy(right))
        assert_same_tables(merged, expect)
    fast1.merge(fast2)
    assert_same_flows(fast1, expect)


def event(**given) -> dict:
    base = dict(
        src=0, dst=1, v6=False, proto=UDP, sport=40000, dport=80, flags=0, seq=0,
        icmp_type=-1, icmp_code=-1, icmp_req=-1, kind=b.PACKET, frag=0, vlan=-1,
        encap=0, iface=0, wirelen=64, dt=1,
    )  # fmt: skip
    return base | given


def test_every_icmp_type_opens_and_answers_as_in_numpy():
    icmp = dict(sport=7, dport=7, icmp_code=0)
    events = [
        event(src=s, dst=1 - s, v6=proto == ICMPV6, proto=proto, icmp_type=t, icmp_req=t, **icmp)
        for proto in (ICMP, ICMPV6)
        for t in range(256)
        for s in (0, 1)
    ]
    fast, ref = group_both([rows_of(events)])
    assert len(fast) == 2 * 256
    assert_same_flows(fast, ref)


def test_tables_grow_past_their_first_index_and_store():
    rng = np.random.default_rng(7)
    ports = rng.integers(1024, 65536, 50_000)
    flags = rng.choice([0x02, 0x12, 0x10, 0x11], len(ports))
    events = [
        event(proto=TCP, sport=int(p), flags=int(f), seq=int(p))
        for p, f in zip(ports, flags, strict=True)
    ]
    fast, ref = group_both([rows_of(events)])
    assert len(fast._index) > 1024 * keyindex.LOAD
    assert_same_flows(fast, ref)
