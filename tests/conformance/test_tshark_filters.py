"""The Wireshark display filters of findings, checked with tshark on the finding's
own capture: each selects exactly the frames of its flows (their replies and the
ICMP errors about them included), nothing of the flows beside them."""

from __future__ import annotations

import subprocess

import pytest
from scapy.layers.inet import ICMP
from scapy.layers.inet6 import ICMPv6DestUnreach

from portmatrix.testing.captures import ip, tcp_session
from support.packets import icmp_unreachable, numbered, udp
from support.site import ADMIN, ADMIN_6, N1, N1_6, N2, N2_6, USER
from support.tshark import tshark


def tshark_frames(path, display_filter):
    out = subprocess.run(
        [
            tshark(),
            "-n",
            "-r",
            str(path),
            "-Y",
            display_filter,
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return {int(x) for x in out.stdout.split()}


def filter_case(v4: bool):
    n1, n2, admin = (N1, N2, ADMIN) if v4 else (N1_6, N2_6, ADMIN_6)
    probe = udp(USER if v4 else n2, n2 if v4 else n1, 40010, 161 if v4 else 9999)
    v6_error = ip(n1, n2) / ICMPv6DestUnreach(code=4) / bytes(probe)
    error = icmp_unreachable(probe) if v4 else v6_error
    return numbered(
        ("wrong-way", tcp_session(n1, admin, 40001, 22)),
        ("allowed", tcp_session(admin, n1, 40002, 22)),  # the other way round, allowed
        ("port-80", tcp_session(n1, admin, 40003, 80)),  # same hosts, another port
        ("wrong-way", tcp_session(n1, admin, 40004, 22)),  # joins the first finding
        ("wrong-way", tcp_session(n2, admin, 40005, 22)),  # another node: the same problem
        ("udp", [probe, error]),  # the ICMP error belongs to the UDP flow
        ("ping", [ip(admin, n1) / ICMP(type=8, id=7)] if v4 else []),
    )


@pytest.mark.parametrize("v4", [True, False], ids=["ipv4", "ipv6"])
def test_filter_selects_exactly_the_findings_frames(check_packets, tmp_path, v4):
    packets, frames = filter_case(v4)
    result = check_packets(packets, name="c.pcap")
    path = tmp_path / "c.pcap"
    found = {(f.initiator, f.port, f.proto): f for f in result.findings if f.kind == "flow"}
    n1, n2, admin = (N1, N2, ADMIN) if v4 else (N1_6, N2_6, ADMIN_6)
    expected = {
        (None, 22, "tcp"): "wrong-way",  # two nodes of one role: no one initiator
        (n1, 80, "tcp"): "port-80",
        ((USER if v4 else n2), 161 if v4 else 9999, "udp"): "udp",
    }
    if v4:
        expected[(admin, 8, "icmp")] = "ping"
    assert set(found) == set(expected)
    assert (found[(None, 22, "tcp")].flows, found[(None, 22, "tcp")].initiators) == (3, 2)
    for key, label in expected.items():
        f = found[key]
        assert ("ipv6." in f.filter) is not v4
        assert tshark_frames(path, f.filter) == frames[label], (label, f.filter)
