"""Wireshark filters of findings, checked against tshark on the finding's own capture."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess

import pytest
from scapy.layers.inet import ICMP, TCP, UDP, IPerror
from scapy.layers.inet6 import ICMPv6DestUnreach

from portmatrix.check import run_check
from portmatrix.testing.captures import ether, ip, tcp_session, write_pcap
from support.site import (
    ADMIN,
    ADMIN_6,
    N1,
    N1_6,
    N2,
    N2_6,
    USER,
    write_site,
)

TODAY = dt.date(2025, 1, 1)  # backup-ssh active, old-snmp expired


def check(tmp_path, packets, *, exceptions=False, name="c.pcap"):
    tmp_path.mkdir(parents=True, exist_ok=True)
    site = write_site(tmp_path)
    path = write_pcap(tmp_path / name, [ether(p) for p in packets])
    rules = [str(site.matrix)] + ([str(site.exceptions)] if exceptions else [])
    return run_check([str(path)], rules, str(site.inventory), today=TODAY)


def flow_findings(result):
    return [f for f in result.findings if f.kind == "flow"]


def only(items):
    assert len(items) == 1, items
    return items[0]


def syn(src, dst, sport, dport):
    return ip(src, dst) / TCP(sport=sport, dport=dport, flags="S", seq=1000)


def rst_ack(src, dst, sport, dport):
    return ip(src, dst) / TCP(sport=sport, dport=dport, flags="RA", seq=0, ack=1001)


def refused(client, server, sport, dport):
    return [syn(client, server, sport, dport), rst_ack(server, client, dport, sport)]


def udp(src, dst, sport, dport, load=b"x"):
    return ip(src, dst) / UDP(sport=sport, dport=dport) / load


def icmp_unreachable(probe):
    return ip(probe.dst, probe.src) / ICMP(type=3, code=3) / IPerror(bytes(probe)[:28])


def midstream(client, server, sport, dport):
    return tcp_session(client, server, sport, dport, handshake=False, close="open")


# Wireshark filters, checked with tshark -----------------------------------------


def numbered(*groups):
    """Packets of labelled groups in order, and the 1-based frames of each label."""
    packets, frames = [], {}
    for label, group in groups:
        start = len(packets) + 1
        packets += group
        frames.setdefault(label, set()).update(range(start, start + len(group)))
    return packets, frames


def tshark_frames(path, display_filter):
    out = subprocess.run(
        [
            "tshark",
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


@pytest.mark.skipif(not shutil.which("tshark"), reason="needs tshark")
@pytest.mark.parametrize("v4", [True, False], ids=["ipv4", "ipv6"])
def test_filter_selects_exactly_the_findings_frames(tmp_path, v4):
    packets, frames = filter_case(v4)
    result = check(tmp_path, packets)
    path = tmp_path / "c.pcap"
    found = {(f.initiator, f.port, f.proto): f for f in flow_findings(result)}
    n1, n2, admin = (N1, N2, ADMIN) if v4 else (N1_6, N2_6, ADMIN_6)
    expected = {
        (None, 22, "tcp"): "wrong-way",  # two nodes: no one initiator
        (n1, 80, "tcp"): "port-80",
        ((USER if v4 else n2), 161 if v4 else 9999, "udp"): "udp",
    }
    if v4:
        expected[(admin, 8, "icmp")] = "ping"
    assert set(found) == set(expected)
    assert found[(None, 22, "tcp")].flows == 3
    assert found[(None, 22, "tcp")].initiators == 2
    for key, label in expected.items():
        f = found[key]
        assert ("ipv6." in f.filter) is not v4
        assert tshark_frames(path, f.filter) == frames[label], (label, f.filter)
