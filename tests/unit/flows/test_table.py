"""The flow table: port reuse, frames, batches, files, merging, live changes and eviction."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from scapy.layers.inet import IP, UDP

from portmatrix.decode import decode
from portmatrix.flows.table import FlowTable
from portmatrix.testing.captures import (
    T0,
    decode_packets,
    ether,
    flow_dicts,
    flows_of,
    frames,
    raw_batch,
    tcp_session,
)
from support.flow_rows import C, S, flows, only, tcp

# Port reuse --------------------------------------------------------------------


def reuse(first_close: str, second_isn: int):
    one = tcp_session(C, S, 40000, 80, isn=1000, close=first_close)
    two = tcp_session(C, S, 40000, 80, isn=second_isn, server_isn=9000, close="fin")
    return flows(one + two)


@pytest.mark.parametrize("close", ["fin", "rst"])
def test_new_syn_with_a_new_isn_after_a_close_is_a_new_flow(close):
    first, second = reuse(close, second_isn=777_777)
    assert first["close"] == close and second["close"] == "fin"
    assert first["frames"] == "1 2 3"
    assert second["frames"].startswith(str(len(tcp_session(C, S, 1, 2, close=close)) + 1))
    assert second["outcome"] == "established" and second["initiator_by"] == "syn"
    assert first["last_seen"] < second["first_seen"]


@pytest.mark.parametrize("close", ["fin", "rst"])
def test_same_isn_after_a_close_is_the_same_flow(close):
    # A retransmitted SYN, or a capture that holds the same packets twice.
    f = only(reuse(close, second_isn=1000))
    assert f["packets_fwd"] + f["packets_rev"] == len(tcp_session(C, S, 1, 2, close=close)) + 8


def test_new_syn_without_a_close_is_the_same_flow():
    packets = [tcp(C, S, 40000, 80, "S", seq=1), tcp(C, S, 40000, 80, "S", seq=555)]
    f = only(flows(packets))
    assert f["packets_fwd"] == 2


def test_refused_then_retried_and_accepted():
    packets = [
        tcp(C, S, 40000, 80, "S", seq=1),
        tcp(S, C, 80, 40000, "RA", ack=2),
        tcp(C, S, 40000, 80, "S", seq=5000),
        tcp(S, C, 80, 40000, "SA", seq=70, ack=5001),
    ]
    first, second = flows(packets)
    assert (first["outcome"], first["frames"]) == ("refused", "1 2")
    assert (second["outcome"], second["frames"]) == ("established", "3 4")


# Frames, batches and files -------------------------------------------------------


def test_first_frames_of_interleaved_flows():
    a = tcp_session(C, S, 40000, 80, close="open", data=[])
    b = tcp_session(C, S, 40001, 80, close="open", data=[])
    packets = [a[0], b[0], a[1], b[1], a[2], b[2]]
    fa, fb = flows(packets)
    assert (fa["frames"], fb["frames"]) == ("1 3 5", "2 4 6")


def test_update_batch_by_batch_and_merging_files():
    packets = [ether(p) for p in tcp_session(C, S, 40000, 80) + tcp_session(C, S, 40001, 80)]
    one = FlowTable()
    rows, _ = decode_packets(packets)
    one.update(rows)
    whole = flow_dicts(one.finish())

    batched = FlowTable()
    for i in range(0, len(packets), 3):
        rows, _ = decode(raw_batch(frames(packets)[i : i + 3], first_frame=i + 1))
        batched.update(rows)
    assert flow_dicts(batched.finish()) == whole

    # Two files: frame numbers restart; the file index tells them apart.
    first = FlowTable(file_id=0)
    first.update(decode(raw_batch(packets[:5]))[0])
    second = FlowTable(file_id=1)
    second.update(decode(raw_batch(frames(packets)[5:]))[0])
    first.merge(second)
    got = flow_dicts(first.finish(), several_files=True)
    assert [g["frames"] for g in got] == ["0:1 0:2 0:3", "1:4 1:5 1:6"]
    assert [g["packets_fwd"] for g in got] == [w["packets_fwd"] for w in whole]


def test_empty_table():
    table = FlowTable()
    rows, _ = decode_packets([])
    table.update(rows)
    assert len(table.finish()) == 0


def test_flows_are_ordered_by_first_packet():
    packets = [
        frame_at(IP(src=C, dst=S) / UDP(sport=2, dport=53), 5),
        frame_at(IP(src=C, dst=S) / UDP(sport=1, dport=53), 1),
    ]
    got = flow_dicts(flows_of(packets))
    assert [g["initiator_port"] for g in got] == [1, 2]


def frame_at(pkt, ms):
    from portmatrix.testing.captures import Frame

    return Frame(bytes(ether(pkt)), ts=T0 + ms * 1_000_000)


def tables_of(packets, cuts):
    rows, _ = decode_packets([ether(p) for p in packets])
    bounds = [0, *cuts, len(rows)]
    out = []
    for a, b in pairwise(bounds):
        table = FlowTable()
        table.update(rows.take(np.arange(a, b)))
        out.append(table)
    return out


def test_same_isn_after_a_fin_when_the_fin_starts_the_next_table():
    # Found by tests/property/test_flow_merge.py: SYN | FIN, SYN (same ISN) was cut
    # into two flows, because the second table took its headless FIN for the end
    # of a connection whose ISN it could not know.
    packets = [
        tcp(C, S, 40000, 80, "S", seq=1000),
        tcp(C, S, 40000, 80, "FA", seq=1001),
        tcp(C, S, 40000, 80, "S", seq=1000),
    ]
    first, second = tables_of(packets, [1])
    first.merge(second)
    (f,) = flow_dicts(first.finish())
    assert (f["packets_fwd"], f["frames"]) == (3, "1 2 3")
    # With a new ISN it is a new connection, whichever table holds the FIN.
    packets[2] = tcp(C, S, 40000, 80, "S", seq=5000)
    first, second = tables_of(packets, [1])
    first.merge(second)
    assert [f["frames"] for f in flow_dicts(first.finish())] == ["1 2", "3"]


def test_same_isn_after_a_fin_merged_right_to_left():
    # Found by the property test too: (S, FIN) + ((S) + (server S)) compared the
    # table's ISN with the *last* SYN of the merged record instead of its first.
    packets = [
        tcp(C, S, 40000, 80, "S", seq=1000),
        tcp(S, C, 80, 40000, "FA", seq=7),
        tcp(C, S, 40000, 80, "S", seq=1000),
        tcp(S, C, 80, 40000, "S", seq=1007),
    ]
    a, b, c = tables_of(packets, [2, 3])
    b.merge(c)
    a.merge(b)
    (f,) = flow_dicts(a.finish())
    assert (f["packets_fwd"], f["packets_rev"]) == (2, 2)


def test_headless_fin_then_syn_alone_is_two_flows():
    # Nothing earlier: the FIN closed a connection the capture did not see.
    packets = [tcp(C, S, 40000, 80, "FA", seq=1), tcp(C, S, 40000, 80, "S", seq=1000)]
    whole = flow_dicts(flows_of([ether(p) for p in packets]))
    assert [f["frames"] for f in whole] == ["1", "2"]
    first, second = tables_of(packets, [1])
    first.merge(second)
    assert flow_dicts(first.finish()) == whole


def touched(table) -> list[tuple[int, int]]:
    """(client port, packets) of the flows `changed()` gives."""
    snap = table.changed()
    packets = snap["pkts_fwd"] + snap["pkts_rev"]
    return sorted(zip(snap["init_port"].tolist(), packets.tolist(), strict=True))


def test_changed_gives_the_flows_that_got_packets_since_the_last_call():
    first = [tcp(C, S, port, 80, "S") for port in (1001, 1002, 1003)]
    table = FlowTable()
    table.update(decode(raw_batch([ether(p) for p in first]))[0])
    assert touched(table) == [(1001, 1), (1002, 1), (1003, 1)]
    assert touched(table) == []  # nothing came since
    later = [tcp(S, C, 80, 1002, "SA"), tcp(C, S, 1004, 80, "S")]
    table.update(decode(raw_batch([ether(p) for p in later], start=T0 + 10**9))[0])
    # The whole flow (both its packets), and the new one; the idle ones are left out.
    assert touched(table) == [(1002, 2), (1004, 1)]
    assert len(table.finish()) == 4  # the table still has them all


def test_eviction_keeps_what_the_live_flows_touched():
    second = 10**9
    table = FlowTable()
    table.update(decode(raw_batch([ether(tcp(C, S, 1001, 80, "S"))]))[0])
    table.update(decode(raw_batch([ether(tcp(C, S, 1002, 80, "S"))], start=T0 + 60 * second))[0])
    touched(table)
    late = T0 + 100 * second
    table.update(decode(raw_batch([ether(tcp(C, S, 1003, 80, "S"))], start=late))[0])
    gone = table.evict(late, idle=50 * second, grace=second)  # 1001 idle for 100 s: out
    assert gone["init_port"].tolist() == [1001]
    assert touched(table) == [(1003, 1)]  # 1002 stays, untouched since the last call


def test_one_sided_flows_end_sooner_than_answered_ones():
    """A SYN nobody answered (a spoofed flood) ends after `half_open`; a connection
    that got answers lives on to the idle timeout."""
    second = 10**9
    table = FlowTable()
    packets = [tcp(C, S, 1001, 80, "S"), tcp(C, S, 1002, 80, "S"), tcp(S, C, 80, 1002, "SA")]
    table.update(decode(raw_batch([ether(p) for p in packets]))[0])
    gone = table.evict(T0 + 12 * second, idle=60 * second, grace=second, half_open=10 * second)
    assert gone["init_port"].tolist() == [1001]
    assert len(table.open_idx) == 1
    gone = table.evict(T0 + 62 * second, idle=60 * second, grace=second, half_open=10 * second)
    assert gone["init_port"].tolist() == [1002]


def test_evicted_flows_are_gone_from_changed_and_finish():
    second = 10**9
    table = FlowTable()
    ports = range(2000, 2300)
    table.update(decode(raw_batch([ether(tcp(C, S, p, 80, "S")) for p in ports]))[0])
    touched(table)
    late = T0 + 100 * second
    table.update(decode(raw_batch([ether(tcp(C, S, 1, 80, "S"))], start=late))[0])
    table.update(decode(raw_batch([ether(tcp(S, C, 80, 2000, "SA"))], start=late))[0])
    gone = table.evict(late + second, idle=50 * second, grace=second)
    # 2000 got its answer late (the same flow: nothing closed it); the rest were over.
    assert sorted(gone["init_port"].tolist()) == list(ports)[1:]
    assert touched(table) == [(1, 1), (2000, 2)]
    assert sorted(table.finish()["init_port"].tolist()) == [1, 2000]


def test_a_store_mostly_of_ended_flows_is_compacted(monkeypatch):
    monkeypatch.setattr(FlowTable, "COMPACT_AT", 100)
    second = 10**9
    table = FlowTable()
    n = 300
    batch = raw_batch([ether(tcp(C, S, 1000 + i, 80, "S")) for i in range(n)])
    table.update(decode(batch)[0])
    table.update(decode(raw_batch([ether(tcp(C, S, 7, 9, "S"))], start=T0 + 90 * second))[0])
    gone = table.evict(T0 + 100 * second, idle=50 * second, grace=second)
    assert len(gone) == n and len(table) == 1
    assert len(table.rec) == 1  # the dead records were dropped from the store
    assert table.finish()["init_port"].tolist() == [7]
