"""The flow table: keys, outcomes, initiators, closes, counters, VLANs, port
reuse, frames; and merging tables of consecutive batches and files."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror
from scapy.layers.inet6 import ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest, IPv6

from portmatrix.decode import decode
from portmatrix.flows import FlowTable
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

C, S, FW = "10.0.0.1", "10.0.0.2", "10.0.0.254"
C6, S6 = "2001:db8::1", "2001:db8::2"


def flows(packets, *, vlans=()):
    return flow_dicts(flows_of([ether(p, vlans=vlans) for p in packets]))


def tcp(src, dst, sport, dport, flags, seq=0, ack=0):
    return IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack)


def only(rows):
    assert len(rows) == 1, rows
    return rows[0]


# Outcomes, initiators and closes ----------------------------------------------


def test_established_tcp_with_counters_and_times():
    packets = tcp_session(C, S, 40000, 80, data=[b"GET / HTTP/1.0\r\n\r\n"])
    f = only(flows(packets))
    assert (
        f["proto"],
        f["initiator"],
        f["initiator_port"],
        f["responder"],
        f["responder_port"],
    ) == (
        "tcp",
        C,
        40000,
        S,
        80,
    )
    assert (f["outcome"], f["initiator_by"], f["close"]) == ("established", "syn", "fin")
    sizes = [len(ether(p)) for p in packets]
    fwd = [s for p, s in zip(packets, sizes, strict=True) if p[IP].src == C]
    rev = [s for p, s in zip(packets, sizes, strict=True) if p[IP].src == S]
    assert (f["packets_fwd"], f["packets_rev"]) == (len(fwd), len(rev)) == (5, 3)
    assert (f["bytes_fwd"], f["bytes_rev"]) == (sum(fwd), sum(rev))
    assert f["first_seen"] == "2023-11-14T22:13:20.000000Z"
    assert f["last_seen"] == "2023-11-14T22:13:20.007000Z"  # 8 packets, 1 ms apart
    assert (f["vlan"], f["icmp_error"], f["encap"], f["frames"]) == ("", "", "", "1 2 3")


def test_refused_by_rst():
    f = only(flows([tcp(C, S, 40000, 23, "S", seq=10), tcp(S, C, 23, 40000, "RA", ack=11)]))
    assert (f["initiator"], f["outcome"], f["initiator_by"], f["close"]) == (
        C,
        "refused",
        "syn",
        "rst",
    )
    assert (f["packets_fwd"], f["packets_rev"]) == (1, 1)


def test_refused_by_icmp_admin_prohibited_quoting_the_syn():
    syn = tcp(C, S, 40000, 3389, "S", seq=10)
    error = IP(src=FW, dst=C) / ICMP(type=3, code=13) / IPerror(bytes(syn)[:28])
    f = only(flows([syn, error]))
    assert (f["initiator"], f["responder_port"], f["outcome"], f["initiator_by"]) == (
        C,
        3389,
        "refused",
        "syn",
    )
    assert f["icmp_error"] == "3/13"
    # The ICMP error is not a packet of the flow: the responder never spoke.
    assert (f["packets_fwd"], f["packets_rev"], f["close"]) == (1, 0, "open")


def test_refused_by_icmp_port_unreachable_quoting_udp():
    probe = IP(src=C, dst=S) / UDP(sport=50000, dport=161) / b"get"
    error = IP(src=S, dst=C) / ICMP(type=3, code=3) / IPerror(bytes(probe)[:28])
    f = only(flows([probe, error]))
    assert (f["proto"], f["initiator"], f["responder_port"], f["outcome"]) == (
        "udp",
        C,
        161,
        "refused",
    )
    assert (f["icmp_error"], f["packets_fwd"], f["packets_rev"]) == ("3/3", 1, 0)


def test_refused_by_icmpv6_unreachable():
    probe = IPv6(src=C6, dst=S6) / UDP(sport=50000, dport=514) / b"log"
    error = IPv6(src=S6, dst=C6) / ICMPv6DestUnreach(code=4) / bytes(probe)
    f = only(flows([probe, error]))
    assert (f["initiator"], f["responder"], f["outcome"], f["icmp_error"]) == (
        C6,
        S6,
        "refused",
        "1/4",
    )


def test_an_icmp_error_alone_is_a_flow_decided_by_the_quote():
    probe = IP(src=C, dst=S) / UDP(sport=50000, dport=53) / b"q"
    error = IP(src=S, dst=C) / ICMP(type=3, code=3) / IPerror(bytes(probe)[:28])
    f = only(flows([error]))
    assert (f["proto"], f["initiator"], f["initiator_port"], f["responder_port"]) == (
        "udp",
        C,
        50000,
        53,
    )
    assert (f["initiator_by"], f["outcome"], f["packets_fwd"], f["packets_rev"]) == (
        "quoted",
        "refused",
        0,
        0,
    )


def test_an_icmp_error_about_the_responders_packet_does_not_refuse():
    query = IP(src=C, dst=S) / UDP(sport=50000, dport=53) / b"q"
    reply = IP(src=S, dst=C) / UDP(sport=53, dport=50000) / b"a"
    late = IP(src=C, dst=S) / ICMP(type=3, code=3) / IPerror(bytes(reply)[:28])
    f = only(flows([query, reply, late]))
    assert (f["outcome"], f["icmp_error"]) == ("established", "3/3")


def test_time_exceeded_does_not_refuse():
    probe = IP(src=C, dst=S, ttl=1) / UDP(sport=33434, dport=33435)
    error = IP(src=FW, dst=C) / ICMP(type=11, code=0) / IPerror(bytes(probe)[:28])
    f = only(flows([probe, error]))
    assert (f["outcome"], f["icmp_error"]) == ("unanswered", "11/0")


def test_unanswered_syn_and_its_retransmissions():
    syn = tcp(C, S, 40000, 443, "S", seq=99)
    f = only(flows([syn, syn, syn]))
    assert (f["outcome"], f["initiator_by"], f["close"], f["packets_fwd"]) == (
        "unanswered",
        "syn",
        "open",
        3,
    )


def test_unanswered_udp():
    f = only(flows([IP(src=C, dst=S) / UDP(sport=50000, dport=514) / b"syslog"]))
    assert (f["initiator"], f["outcome"], f["initiator_by"]) == (C, "unanswered", "first-packet")


def test_answered_udp():
    f = only(
        flows(
            [
                IP(src=C, dst=S) / UDP(sport=50000, dport=53) / b"q",
                IP(src=S, dst=C) / UDP(sport=53, dport=50000) / b"a",
            ]
        )
    )
    assert (f["initiator"], f["outcome"], f["initiator_by"]) == (C, "established", "first-packet")
    assert f["close"] == ""  # only TCP has a close


def test_udp_reply_seen_first_is_turned_around_by_the_ports():
    f = only(
        flows(
            [
                IP(src=S, dst=C) / UDP(sport=53, dport=50000) / b"a",
                IP(src=C, dst=S) / UDP(sport=50000, dport=53) / b"q",
            ]
        )
    )
    assert (f["initiator"], f["responder_port"], f["initiator_by"]) == (C, 53, "port")
    assert (f["packets_fwd"], f["packets_rev"]) == (1, 1)


def test_midstream_tcp_uses_the_port_heuristic():
    # The capture starts mid-connection, with the server's data first.
    packets = [
        tcp(S, C, 443, 51000, "PA", seq=5000, ack=700) / b"data",
        tcp(C, S, 51000, 443, "A", seq=700, ack=5004),
        tcp(C, S, 51000, 443, "FA", seq=700, ack=5004),
    ]
    f = only(flows(packets))
    assert (f["initiator"], f["initiator_port"], f["responder_port"]) == (C, 51000, 443)
    assert (f["outcome"], f["initiator_by"], f["close"]) == ("midstream", "port", "fin")
    assert (f["packets_fwd"], f["packets_rev"]) == (2, 1)


def test_midstream_without_a_telling_port_uses_the_first_packet():
    packets = [
        tcp(S, C, 50001, 60000, "PA", seq=1) / b"x",
        tcp(C, S, 60000, 50001, "A", ack=2),
    ]
    f = only(flows(packets))
    assert (f["initiator"], f["outcome"], f["initiator_by"]) == (S, "midstream", "first-packet")


def test_syn_ack_only():
    packets = [tcp(S, C, 22, 40000, "SA", seq=1, ack=100), tcp(C, S, 40000, 22, "A", seq=100)]
    f = only(flows(packets))
    assert (f["initiator"], f["responder_port"], f["initiator_by"], f["outcome"]) == (
        C,
        22,
        "syn-ack",
        "established",
    )


def test_syn_beats_the_port_heuristic():
    # A server opening towards a client's high port is what the SYN says.
    packets = [tcp(S, C, 22, 40000, "S", seq=1), tcp(C, S, 40000, 22, "SA", seq=9, ack=2)]
    f = only(flows(packets))
    assert (f["initiator"], f["initiator_port"], f["initiator_by"]) == (S, 22, "syn")


def test_icmp_echo_request_and_reply():
    packets = [
        IP(src=C, dst=S) / ICMP(type=8, id=7, seq=1),
        IP(src=S, dst=C) / ICMP(type=0, id=7, seq=1),
        IP(src=C, dst=S) / ICMP(type=8, id=7, seq=2),
        IP(src=S, dst=C) / ICMP(type=0, id=7, seq=2),
        IP(src=C, dst=S) / ICMP(type=8, id=8, seq=1),  # another identifier: another flow
    ]
    first, second = flows(packets)
    assert (first["proto"], first["initiator"], first["initiator_port"]) == ("icmp", C, 8)
    assert first["responder_port"] == 0
    assert (first["initiator_by"], first["outcome"]) == ("request", "established")
    assert (first["packets_fwd"], first["packets_rev"]) == (2, 2)
    assert (second["initiator_by"], second["outcome"], second["packets_fwd"]) == (
        "request",
        "unanswered",
        1,
    )


def test_icmpv6_echo_and_a_reply_alone():
    packets = [
        IPv6(src=C6, dst=S6) / ICMPv6EchoRequest(id=1),
        IPv6(src=S6, dst=C6) / ICMPv6EchoReply(id=1),
        IPv6(src=S6, dst=C6) / ICMPv6EchoReply(id=2),  # its request was not captured
    ]
    first, second = flows(packets)
    assert (first["proto"], first["initiator"], first["initiator_by"], first["outcome"]) == (
        "icmpv6",
        C6,
        "request",
        "established",
    )
    assert first["initiator_port"] == 128
    assert (second["initiator"], second["initiator_by"]) == (C6, "syn-ack")


def test_close_by_rst_after_establishing():
    packets = tcp_session(C, S, 40000, 80, close="rst")
    f = only(flows(packets))
    assert (f["outcome"], f["close"]) == ("established", "rst")


def test_open_connection():
    f = only(flows(tcp_session(C, S, 40000, 80, close="open")))
    assert (f["outcome"], f["close"]) == ("established", "open")


def test_sctp_flow():
    from scapy.layers.sctp import SCTP

    packets = [
        IP(src=C, dst=S) / SCTP(sport=2905, dport=2905),
        IP(src=S, dst=C) / SCTP(sport=2905, dport=2905),
    ]
    f = only(flows(packets))
    assert (f["proto"], f["outcome"], f["initiator"]) == ("sctp", "established", C)


# Keys --------------------------------------------------------------------------


def test_both_directions_are_one_flow_and_other_ports_are_not():
    packets = [
        IP(src=C, dst=S) / UDP(sport=50000, dport=53),
        IP(src=S, dst=C) / UDP(sport=53, dport=50000),
        IP(src=C, dst=S) / UDP(sport=50001, dport=53),
        IP(src=C, dst=S) / TCP(sport=50000, dport=53, flags="S"),
        IP(src=C, dst="10.0.0.3") / UDP(sport=50000, dport=53),
    ]
    assert len(flows(packets)) == 4


def test_vlan_is_not_in_the_key():
    # One connection mirrored from two tagged links: every packet twice.
    packets = tcp_session(C, S, 40000, 80)
    doubled = []
    for p in packets:
        doubled += [ether(p, vlans=[20]), ether(p, vlans=[10])]
    f = only(flow_dicts(flows_of(doubled)))
    assert f["vlan"] == "10,20"
    assert (f["packets_fwd"], f["packets_rev"]) == (10, 6)
    assert (f["outcome"], f["initiator_by"], f["close"]) == ("established", "syn", "fin")


def test_one_vlan_and_untagged():
    packets = [ether(p, vlans=[7] if i % 2 else []) for i, p in enumerate(tcp_session(C, S, 1, 2))]
    f = only(flow_dicts(flows_of(packets)))
    assert f["vlan"] == "7"


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
