"""Wireshark display filters of findings, as text: directional with ports, by
address family, by protocol without; several hosts as sets, too many left open.
That tshark selects exactly a finding's frames with them:
tests/conformance/test_tshark_filters.py."""

from __future__ import annotations

import pytest

from portmatrix.findings.wireshark import wireshark_filter


def one(port: int) -> list[tuple[int, int, int]]:
    return [(6, port, port)]


@pytest.mark.parametrize("proto", ["tcp", "udp", "sctp"])
def test_with_ports_the_filter_is_one_way_and_its_replies(proto):
    assert wireshark_filter(proto, ["10.0.0.1"], ["10.0.0.2"], one(22)) == (
        f"(ip.src==10.0.0.1 && ip.dst==10.0.0.2 && {proto}.dstport==22) || "
        f"(ip.src==10.0.0.2 && ip.dst==10.0.0.1 && {proto}.srcport==22)"
    )


def test_ipv6_fields_for_ipv6_addresses():
    assert wireshark_filter("udp", ["fd00::1"], ["fd00::2"], one(53)) == (
        "(ipv6.src==fd00::1 && ipv6.dst==fd00::2 && udp.dstport==53) || "
        "(ipv6.src==fd00::2 && ipv6.dst==fd00::1 && udp.srcport==53)"
    )
    assert wireshark_filter("icmpv6", ["fd00::1"], ["fd00::2"], one(128)) == (
        "ipv6.addr==fd00::1 && ipv6.addr==fd00::2 && icmpv6"
    )


def test_icmp_filters_by_protocol_and_both_hosts():
    assert wireshark_filter("icmp", ["10.0.0.1"], ["10.0.0.2"], one(8)) == (
        "ip.addr==10.0.0.1 && ip.addr==10.0.0.2 && icmp"
    )


def test_other_protocols_by_number():
    assert wireshark_filter("47", ["10.0.0.1"], ["10.0.0.2"], []) == (
        "ip.addr==10.0.0.1 && ip.addr==10.0.0.2 && ip.proto==47"
    )
    assert wireshark_filter("50", ["fd00::1"], ["fd00::2"], []) == (
        "ipv6.addr==fd00::1 && ipv6.addr==fd00::2 && ipv6.nxt==50"
    )


def test_a_port_protocol_without_a_port_is_between_the_hosts():
    assert wireshark_filter("tcp", ["10.0.0.1"], ["10.0.0.2"], []) == (
        "ip.addr==10.0.0.1 && ip.addr==10.0.0.2"
    )


def test_several_hosts_and_ports_are_sets_and_ranges():
    runs = [(6, 22, 22), (6, 8000, 8010)]
    assert wireshark_filter("tcp", ["10.0.0.1", "10.0.0.2"], ["10.0.1.5"], runs) == (
        "(ip.src in {10.0.0.1, 10.0.0.2} && ip.dst==10.0.1.5 && tcp.dstport in {22, 8000..8010})"
        " || (ip.src==10.0.1.5 && ip.dst in {10.0.0.1, 10.0.0.2} && "
        "tcp.srcport in {22, 8000..8010})"
    )


def test_a_side_of_too_many_hosts_is_left_open():
    assert wireshark_filter("tcp", None, ["10.0.0.1"], one(443)) == (
        "(ip.dst==10.0.0.1 && tcp.dstport==443) || (ip.src==10.0.0.1 && tcp.srcport==443)"
    )
    assert wireshark_filter("tcp", None, None, one(443)) == (
        "(tcp.dstport==443) || (tcp.srcport==443)"
    )


def test_both_families_give_a_clause_each():
    text = wireshark_filter("tcp", ["10.0.0.1", "fd00::1"], ["10.0.0.2", "fd00::2"], one(22))
    assert text == (
        "((ip.src==10.0.0.1 && ip.dst==10.0.0.2 && tcp.dstport==22) || "
        "(ip.src==10.0.0.2 && ip.dst==10.0.0.1 && tcp.srcport==22)) || "
        "((ipv6.src==fd00::1 && ipv6.dst==fd00::2 && tcp.dstport==22) || "
        "(ipv6.src==fd00::2 && ipv6.dst==fd00::1 && tcp.srcport==22))"
    )


def test_a_scan_is_between_the_scanner_and_its_targets():
    assert wireshark_filter(None, ["10.0.2.7"], ["10.0.0.1", "10.0.0.2"], []) == (
        "((ip.src==10.0.2.7 && ip.dst in {10.0.0.1, 10.0.0.2}) || "
        "(ip.src in {10.0.0.1, 10.0.0.2} && ip.dst==10.0.2.7))"
    )


def test_hosts_of_one_group_among_themselves_get_one_clause():
    hosts = ["10.20.0.11", "10.20.0.14"]
    got = wireshark_filter("icmp", hosts, hosts, [])
    assert (
        got == "(ip.src in {10.20.0.11, 10.20.0.14} && ip.dst in {10.20.0.11, 10.20.0.14}) && icmp"
    )
