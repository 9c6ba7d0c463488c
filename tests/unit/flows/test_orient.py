"""Flow orientation: outcomes, initiators and closes decided from the wire."""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, UDP, IPerror
from scapy.layers.inet6 import ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest, IPv6

from portmatrix.flows import keyindex
from portmatrix.testing.captures import (
    ether,
    tcp_session,
)
from support.flow_rows import C6, FW, S6, C, S, flows, only, tcp

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


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
def test_a_host_pinging_itself_is_answered(compiled, monkeypatch):
    """Request and reply both go from the host to itself: only the reply's type
    says it went the other way (a capture on lo, a host's own capture)."""
    if not compiled:
        monkeypatch.setattr(keyindex, "compiled", None)
    packets = [
        IP(src=C, dst=C) / ICMP(type=8, id=5, seq=1),
        IP(src=C, dst=C) / ICMP(type=0, id=5, seq=1),
        IP(src=C, dst=C) / ICMP(type=8, id=5, seq=2),
        IP(src=C, dst=C) / ICMP(type=0, id=5, seq=2),
        IPv6(src=C6, dst=C6) / ICMPv6EchoRequest(id=1),
        IPv6(src=C6, dst=C6) / ICMPv6EchoReply(id=1),
    ]
    v4, v6 = flows(packets)
    assert (v4["initiator"], v4["responder"], v4["initiator_by"], v4["outcome"]) == (
        C,
        C,
        "request",
        "established",
    )
    assert (v4["packets_fwd"], v4["packets_rev"]) == (2, 2)
    assert (v6["outcome"], v6["packets_fwd"], v6["packets_rev"]) == ("established", 1, 1)


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
