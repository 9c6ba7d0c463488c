"""Wireshark display filters of findings, as text: directional with ports, by
address family, by protocol without. That tshark selects exactly a finding's
frames with them: tests/conformance/test_tshark_filters.py."""

from __future__ import annotations

import pytest

from portmatrix.findings.wireshark import wireshark_filter


@pytest.mark.parametrize("proto", ["tcp", "udp", "sctp"])
def test_with_ports_the_filter_is_one_way_and_its_replies(proto):
    assert wireshark_filter(proto, "10.0.0.1", "10.0.0.2", 22) == (
        f"(ip.src==10.0.0.1 && ip.dst==10.0.0.2 && {proto}.dstport==22) || "
        f"(ip.src==10.0.0.2 && ip.dst==10.0.0.1 && {proto}.srcport==22)"
    )


def test_ipv6_fields_for_ipv6_addresses():
    assert wireshark_filter("udp", "fd00::1", "fd00::2", 53) == (
        "(ipv6.src==fd00::1 && ipv6.dst==fd00::2 && udp.dstport==53) || "
        "(ipv6.src==fd00::2 && ipv6.dst==fd00::1 && udp.srcport==53)"
    )
    assert wireshark_filter("icmpv6", "fd00::1", "fd00::2", 128) == (
        "ipv6.addr==fd00::1 && ipv6.addr==fd00::2 && icmpv6"
    )


def test_icmp_filters_by_protocol_and_both_hosts():
    assert wireshark_filter("icmp", "10.0.0.1", "10.0.0.2", 8) == (
        "ip.addr==10.0.0.1 && ip.addr==10.0.0.2 && icmp"
    )


def test_other_protocols_by_number():
    assert wireshark_filter("47", "10.0.0.1", "10.0.0.2", None) == (
        "ip.addr==10.0.0.1 && ip.addr==10.0.0.2 && ip.proto==47"
    )
    assert wireshark_filter("50", "fd00::1", "fd00::2", None) == (
        "ipv6.addr==fd00::1 && ipv6.addr==fd00::2 && ipv6.nxt==50"
    )


def test_a_port_protocol_without_a_port_is_between_the_hosts():
    assert wireshark_filter("tcp", "10.0.0.1", "10.0.0.2", None) == (
        "ip.addr==10.0.0.1 && ip.addr==10.0.0.2"
    )
