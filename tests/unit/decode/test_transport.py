"""Transport headers: ports, TCP flags and sequence numbers, ICMP type/code and
echo identifiers, and the header quoted inside ICMP errors."""

from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NS,
    ICMPv6TimeExceeded,
    IPv6,
)
from scapy.layers.sctp import SCTP, SCTPChunkInit

from portmatrix.decode import batch as b
from portmatrix.testing.captures import ether
from support.decoders import decoded

C, S = "10.0.0.1", "10.0.0.2"
C6, S6 = "2001:db8::1", "2001:db8::2"


@pytest.mark.parametrize(
    ("flags", "value"),
    [("S", 0x02), ("SA", 0x12), ("A", 0x10), ("PA", 0x18), ("FA", 0x11), ("R", 0x04), ("RA", 0x14)],
)
def test_tcp_ports_flags_and_sequence(flags, value):
    pkt = IP(src=C, dst=S) / TCP(sport=40001, dport=8080, flags=flags, seq=0xFFFFFFF0)
    (row,), _ = decoded([ether(pkt)])
    assert (row["proto"], row["sport"], row["dport"]) == (6, 40001, 8080)
    assert row["tcp_flags"] == value
    # The sequence number is kept for SYNs only (what tells a new connection apart).
    assert row["tcp_seq"] == (0xFFFFFFF0 if value & 0x02 else -1)
    assert row["icmp_type"] == -1 and row["icmp_req"] == -1


def test_udp_sctp_and_udplite_ports():
    udplite = IP(src=C, dst=S, proto=136) / struct.pack(">HHHH", 5000, 5001, 8, 0)
    packets = [
        IP(src=C, dst=S) / UDP(sport=123, dport=123),
        IPv6(src=C6, dst=S6) / SCTP(sport=3868, dport=3868) / SCTPChunkInit(),
        udplite,
        IP(src=C, dst=S, proto=89) / (b"\0" * 24),  # OSPF: no ports
    ]
    rows, _ = decoded([ether(p) for p in packets])
    assert [(r["proto"], r["sport"], r["dport"], r["tcp_seq"]) for r in rows] == [
        (17, 123, 123, -1),
        (132, 3868, 3868, -1),
        (136, 5000, 5001, -1),
        (89, 0, 0, -1),
    ]


def test_transport_cut_before_the_ports_is_undecodable():
    raw = bytes(IP(src=C, dst=S) / TCP(sport=1, dport=2))[:22]
    rows, counts = decoded([raw], 101)
    assert rows == [] and counts.undecodable == {"transport ports cut short": 1}


def test_tcp_flags_cut_by_the_snaplen_still_decodes():
    raw = bytes(IP(src=C, dst=S) / TCP(sport=1, dport=2, flags="S", seq=99))
    (row,), counts = decoded([raw[: 20 + 10]], 101)
    # The flags are cut off: it cannot be known to be a SYN, so no sequence number.
    assert (row["sport"], row["dport"], row["tcp_flags"], row["tcp_seq"]) == (1, 2, 0, -1)
    assert counts.l4_truncated == 1 and counts.ip == 1
    (row,), counts = decoded([raw[: 20 + 6]], 101)
    assert (row["tcp_seq"], counts.l4_truncated) == (-1, 1)


def test_icmp_echo_pairs_on_the_identifier():
    packets = [
        IP(src=C, dst=S) / ICMP(type=8, id=0x1234, seq=1),
        IP(src=S, dst=C) / ICMP(type=0, id=0x1234, seq=1),
        IP(src=C, dst=S) / ICMP(type=13, id=77),  # timestamp request
        IP(src=S, dst=C) / ICMP(type=14, id=77),
        IPv6(src=C6, dst=S6) / ICMPv6EchoRequest(id=9, seq=3),
        IPv6(src=S6, dst=C6) / ICMPv6EchoReply(id=9, seq=3),
    ]
    rows, _ = decoded([ether(p) for p in packets])
    got = [(r["proto"], r["icmp_type"], r["icmp_req"], r["sport"], r["dport"]) for r in rows]
    assert got == [
        (1, 8, 8, 0x1234, 0x1234),
        (1, 0, 8, 0x1234, 0x1234),
        (1, 13, 13, 77, 77),
        (1, 14, 13, 77, 77),
        (58, 128, 128, 9, 9),
        (58, 129, 128, 9, 9),
    ]
    assert all(r["kind"] == b.PACKET for r in rows)


def test_other_icmp_messages_form_one_flow_per_type():
    packets = [
        IP(src=C, dst=S) / ICMP(type=9, code=0),  # router advertisement
        IPv6(src=C6, dst=S6) / ICMPv6ND_NS(tgt=S6),
    ]
    rows, _ = decoded([ether(p) for p in packets])
    assert [(r["icmp_type"], r["icmp_req"], r["sport"], r["dport"]) for r in rows] == [
        (9, 9, 0, 0),
        (135, 135, 0, 0),
    ]


def test_icmp_port_unreachable_carries_the_quoted_udp_flow():
    probe = IP(src=C, dst=S) / UDP(sport=51000, dport=161) / b"snmp"
    error = IP(src=S, dst=C) / ICMP(type=3, code=3) / IPerror(bytes(probe)[:28])
    (row,), counts = decoded([ether(error)])
    assert counts.ip == 1
    assert row["kind"] == b.ICMP_ERROR
    # The row is the flow it answers, in the direction of the quoted packet.
    assert (row["src"], row["dst"], row["proto"], row["sport"], row["dport"]) == (
        C,
        S,
        17,
        51000,
        161,
    )
    assert (row["icmp_type"], row["icmp_code"]) == (3, 3)
    assert row["tcp_flags"] == 0 and row["tcp_seq"] == -1


def test_icmp_admin_prohibited_quoting_a_tcp_syn():
    syn = IP(src=C, dst=S) / TCP(sport=40000, dport=3389, flags="S", seq=5)
    # A firewall answers with the SYN's IP header and first 8 bytes of TCP.
    error = IP(src="10.0.0.254", dst=C) / ICMP(type=3, code=13) / IPerror(bytes(syn)[:28])
    (row,), _ = decoded([ether(error)])
    assert row["kind"] == b.ICMP_ERROR
    assert (row["src"], row["dst"], row["proto"], row["sport"], row["dport"]) == (
        C,
        S,
        6,
        40000,
        3389,
    )
    assert (row["icmp_type"], row["icmp_code"]) == (3, 13)


def test_icmp_time_exceeded_quoting_an_echo_request():
    echo = IP(src=C, dst="192.0.2.9", ttl=1) / ICMP(type=8, id=321, seq=1)
    error = IP(src="10.0.0.254", dst=C) / ICMP(type=11, code=0) / IPerror(bytes(echo)[:28])
    (row,), _ = decoded([ether(error)])
    assert row["kind"] == b.ICMP_ERROR
    assert (row["proto"], row["sport"], row["dport"], row["icmp_req"]) == (1, 321, 321, 8)
    assert (row["icmp_type"], row["icmp_code"]) == (11, 0)


def test_icmpv6_errors_carry_the_quoted_flow():
    probe = IPv6(src=C6, dst=S6) / UDP(sport=5000, dport=53) / b"q"
    errors = [
        IPv6(src=S6, dst=C6) / ICMPv6DestUnreach(code=4) / bytes(probe),
        IPv6(src="2001:db8::fe", dst=C6) / ICMPv6TimeExceeded() / bytes(probe),
    ]
    rows, _ = decoded([ether(e) for e in errors])
    for row, itype, code in zip(rows, (1, 3), (4, 0), strict=True):
        assert row["kind"] == b.ICMP_ERROR
        assert (row["src"], row["dst"], row["proto"], row["sport"], row["dport"]) == (
            C6,
            S6,
            17,
            5000,
            53,
        )
        assert (row["icmp_type"], row["icmp_code"]) == (itype, code)


def test_icmp_error_too_short_to_quote_stays_an_icmp_packet():
    error = IP(src=S, dst=C) / ICMP(type=3, code=3) / (b"\x45" + b"\0" * 10)
    (row,), counts = decoded([ether(error)])
    assert counts.ip == 1
    assert row["kind"] == b.PACKET
    assert (row["src"], row["proto"], row["icmp_type"], row["icmp_req"]) == (S, 1, 3, 3)


def test_icmp_error_quoting_udp_without_ports_stays_an_icmp_packet():
    probe = bytes(IP(src=C, dst=S) / UDP(sport=1, dport=2))
    error = IP(src=S, dst=C) / ICMP(type=3, code=3) / probe[:22]
    (row,), _ = decoded([ether(error)])
    assert row["kind"] == b.PACKET and row["proto"] == 1


def test_udp_errors_quoted_class_is_only_a_header():
    # scapy's UDPerror is how tools write a quoted header; it decodes the same.
    error = (
        IP(src=S, dst=C) / ICMP(type=3, code=1) / IPerror(src=C, dst=S) / UDPerror(sport=7, dport=8)
    )
    (row,), _ = decoded([ether(error)])
    assert (row["kind"], row["sport"], row["dport"], row["icmp_code"]) == (b.ICMP_ERROR, 7, 8, 1)
