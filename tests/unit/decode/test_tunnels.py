"""Tunnels: the outer packet and the packet inside are both rows (and flows),
the inner one marked with its encapsulation."""

from __future__ import annotations

import pytest
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

from portmatrix.decode import batch as b
from portmatrix.testing.captures import (
    MAC_A,
    MAC_B,
    ether,
    flow_dicts,
    flows_of,
)
from support.decoders import decoded

OUT_A, OUT_B = "203.0.113.1", "203.0.113.2"

INNER = IP(src="10.9.0.1", dst="10.9.0.2") / TCP(sport=33000, dport=22, flags="S")
INNER6 = IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=5000, dport=53)


def inner_eth(pkt=INNER):
    return Ether(src=MAC_B, dst=MAC_A) / pkt


def summary(row):
    return (row["encap"], row["src"], row["dst"], row["proto"], row["sport"], row["dport"])


@pytest.mark.parametrize(
    ("outer", "encap", "inner"),
    [
        (IP(src=OUT_A, dst=OUT_B) / INNER, "ipip", INNER),
        (IP(src=OUT_A, dst=OUT_B) / INNER6, "ipip", INNER6),  # 6in4, protocol 41
        (IPv6(src="2001:db8::a", dst="2001:db8::b") / INNER, "ipip", INNER),
        (IP(src=OUT_A, dst=OUT_B) / GRE() / INNER, "gre", INNER),
        (IP(src=OUT_A, dst=OUT_B) / GRE() / INNER6, "gre", INNER6),
        (
            IP(src=OUT_A, dst=OUT_B)
            / GRE(chksum_present=1, key_present=1, key=7, seqnum_present=1, sequence_number=1)
            / INNER,
            "gre",
            INNER,
        ),
        (IP(src=OUT_A, dst=OUT_B) / GRE(proto=0x6558) / inner_eth(), "gre", INNER),
        (
            IP(src=OUT_A, dst=OUT_B)
            / GRE(proto=0x6558)
            / Ether(src=MAC_A, dst=MAC_B)
            / Dot1Q(vlan=5)
            / INNER,
            "gre",
            INNER,
        ),
        (
            IP(src=OUT_A, dst=OUT_B) / UDP(sport=49152, dport=4789) / VXLAN(vni=42) / inner_eth(),
            "vxlan",
            INNER,
        ),
        (
            IP(src=OUT_A, dst=OUT_B)
            / UDP(sport=49152, dport=6081)
            / GENEVE(proto=0x6558)
            / inner_eth(),
            "geneve",
            INNER,
        ),
        (
            IP(src=OUT_A, dst=OUT_B)
            / UDP(sport=49152, dport=6081)
            / GENEVE(proto=0x0800, optionlen=2, options=b"\x01\x02\x03\x04" * 2)
            / INNER,
            "geneve",
            INNER,
        ),
    ],
    ids=[
        "ip-in-ip",
        "6in4",
        "4in6",
        "gre-ip",
        "gre-ipv6",
        "gre-key-seq-csum",
        "gre-ethernet",
        "gre-ethernet-vlan",
        "vxlan",
        "geneve-ethernet",
        "geneve-ip-with-options",
    ],
)
def test_outer_and_inner_rows(outer, encap, inner):
    rows, counts = decoded([ether(outer)])
    assert counts.ip == counts.frames == 1  # one frame, counted once
    assert len(rows) == 2
    outer_row, inner_row = rows
    assert outer_row["encap"] == 0 and outer_row["frame"] == inner_row["frame"] == 1
    assert b.ENCAPS[inner_row["encap"]] == encap
    expect = (inner.src, inner.dst, inner.payload.sport, inner.payload.dport)
    got = (inner_row["src"], inner_row["dst"], inner_row["sport"], inner_row["dport"])
    assert got == expect


def test_tunnel_flows_are_flows_too():
    packets = [
        ether(IP(src=OUT_A, dst=OUT_B) / GRE() / INNER),
        ether(
            IP(src=OUT_B, dst=OUT_A)
            / GRE()
            / IP(src="10.9.0.2", dst="10.9.0.1")
            / TCP(sport=22, dport=33000, flags="SA")
        ),
    ]
    flows = {(f["proto"], f["encap"]): f for f in flow_dicts(flows_of(packets))}
    assert set(flows) == {("47", ""), ("tcp", "gre")}
    outer, inner = flows["47", ""], flows["tcp", "gre"]
    assert (outer["initiator"], outer["responder"]) == (OUT_A, OUT_B)
    assert (outer["packets_fwd"], outer["packets_rev"]) == (1, 1)
    assert (inner["initiator"], inner["responder_port"]) == ("10.9.0.1", 22)
    assert (inner["outcome"], inner["initiator_by"]) == ("established", "syn")


def test_nested_tunnels():
    pkt = IP(src=OUT_A, dst=OUT_B) / GRE() / IP(src="192.0.2.1", dst="192.0.2.2") / INNER
    rows, _ = decoded([ether(pkt)])
    assert [(b.ENCAPS[r["encap"]], r["proto"]) for r in rows] == [
        ("", 47),
        ("gre", 4),
        ("ipip", 6),
    ]


def test_what_is_not_a_tunnel():
    packets = [
        IP(src=OUT_A, dst=OUT_B)
        / GRE(version=1, proto=0x880B)
        / (b"\xff\x03\x00\x21" + bytes(INNER)),
        IP(src=OUT_A, dst=OUT_B)
        / UDP(sport=4789, dport=40000)
        / VXLAN()
        / inner_eth(),  # reply port
        IP(src=OUT_A, dst=OUT_B) / UDP(dport=4789) / VXLAN(flags=0) / inner_eth(),  # no VNI flag
        IP(src=OUT_A, dst=OUT_B) / UDP(dport=6081) / (b"\xc0" + bytes(15)),  # Geneve version 3
        IP(src=OUT_A, dst=OUT_B) / GRE(proto=0x0806) / b"arp",
    ]
    rows, counts = decoded([ether(p) for p in packets])
    assert len(rows) == len(packets) and all(r["encap"] == 0 for r in rows)
    assert counts.inner_undecodable == 0


def test_undecodable_inner_packet_is_counted_once_the_outer_is_decoded():
    packets = [
        # (raw bytes inside: scapy cannot guess the protocol numbers, give them)
        IP(src=OUT_A, dst=OUT_B) / GRE(proto=0x0800) / bytes(INNER)[:12],  # inner IP cut short
        IP(src=OUT_A, dst=OUT_B, proto=4) / bytes(INNER)[:22],  # IP-in-IP, inner ports cut
    ]
    rows, counts = decoded([ether(p) for p in packets])
    assert counts.ip == 2 and counts.undecodable == {}
    assert counts.inner_undecodable == 2
    assert [r["encap"] for r in rows] == [0, 0]


def test_icmp_error_inside_a_tunnel_is_tied_to_the_inner_flow():
    # As in zeek's gre-sample.pcap: an ICMP port unreachable travelling in GRE.
    probe = IP(src="10.9.0.1", dst="10.9.0.2") / UDP(sport=5353, dport=123)
    error = IP(src="10.9.0.2", dst="10.9.0.1") / ICMP(type=3, code=3) / bytes(probe)
    rows, _ = decoded([ether(IP(src=OUT_A, dst=OUT_B) / GRE() / error)])
    inner = rows[1]
    assert inner["kind"] == b.ICMP_ERROR and b.ENCAPS[inner["encap"]] == "gre"
    assert (inner["src"], inner["sport"], inner["dport"]) == ("10.9.0.1", 5353, 123)


def test_tunnels_are_not_followed_in_later_fragments():
    from scapy.layers.inet import fragment

    big = IP(src=OUT_A, dst=OUT_B, id=3) / GRE() / INNER / (b"p" * 1500)
    rows, _ = decoded([ether(f) for f in fragment(big, fragsize=800)])
    assert [(r["frag"], r["encap"]) for r in rows] == [
        (b.FIRST_FRAGMENT, 0),
        (b.NOT_FRAGMENT, 2),  # the inner packet starts in the first fragment
        (b.LAST_FRAGMENT, 0),
    ]


def nested(depth: int):
    """INNER inside `depth` GRE tunnels, each with its own outer addresses."""
    pkt = INNER
    for k in range(depth):
        pkt = IP(src=f"203.0.113.{2 * k + 1}", dst=f"203.0.113.{2 * k + 2}") / GRE() / pkt
    return ether(pkt)


def test_tunnels_decode_to_their_depth_limit_and_count_the_packet_beyond():
    rows, counts = decoded([nested(b.MAX_TUNNELS), nested(b.MAX_TUNNELS + 1)])
    at_limit = [r for r in rows if r["frame"] == 1]
    # The outer packet, the packets of the first two tunnels, and the innermost one.
    assert len(at_limit) == b.MAX_TUNNELS + 1
    assert (at_limit[-1]["proto"], at_limit[-1]["dport"]) == (6, 22)
    beyond = [r for r in rows if r["frame"] == 2]
    # The outer packet and three tunnels are rows; what the fourth carries is counted.
    assert len(beyond) == b.MAX_TUNNELS + 1
    assert all(r["proto"] == 47 for r in beyond)
    assert (counts.inner_undecodable, counts.inner_too_deep) == (1, 1)
    assert counts.ip == 2


def test_too_deep_in_a_tunnel_is_said_in_the_notices():
    from portmatrix.flows.health import CaptureHealth

    _, counts = decoded([nested(b.MAX_TUNNELS + 2)])
    health = CaptureHealth()
    health.captures, health.drops, health.counts, health.remarks = [], 0, counts, []
    health.tcp_flows = health.tcp_one_way = 0
    health.fragments_unresolved = health.fragments_incomplete = 0
    health.fragments_overlapping = 0
    (notice,) = health.notices()
    assert "1 tunnelled packets could not be decoded" in notice
    assert f"deeper than portmatrix decodes ({b.MAX_TUNNELS} tunnels" in notice
