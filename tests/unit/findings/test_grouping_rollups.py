"""Roll-ups: scans, many sources (floods), many ports, intermittent failures of a
healthy service; and the same decisions when watch sees the flows tick by tick."""

from __future__ import annotations

import datetime as dt

from scapy.layers.inet import TCP

from portmatrix.check import run_check
from portmatrix.decode import decode
from portmatrix.findings.model import Thresholds, stable_id
from portmatrix.policy.inventory import load_inventory
from portmatrix.policy.matrix import load_matrix
from portmatrix.testing.captures import ether, ip, raw_batch, tcp_session, write_pcap
from portmatrix.watch.watcher import Watcher
from support.site import N1, N2, N3, USER, write_site

TODAY = dt.date(2025, 1, 1)


def syn(src, dst, sport, dport):
    return ip(src, dst) / TCP(sport=sport, dport=dport, flags="S", seq=1000)


def refused(client, server, sport, dport):
    return [
        syn(client, server, sport, dport),
        ip(server, client) / TCP(sport=dport, dport=sport, flags="RA", ack=1001),
    ]


def check(tmp_path, packets, thresholds=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    site = write_site(tmp_path)
    path = write_pcap(tmp_path / "c.pcap", [ether(p) for p in packets])
    return run_check(
        [str(path)], [str(site.matrix)], str(site.inventory), today=TODAY, thresholds=thresholds
    )


def kinds(result):
    return sorted((f.kind, f.verdict, f.flows) for f in result.findings if f.kind != "coverage")


def port_scan(n_ports=40, open_port=8443):
    packets = []
    for k, port in enumerate(range(9000, 9000 + n_ports)):
        packets += refused(USER, N1, 40000 + k, port)
    packets += tcp_session(USER, N1, 39999, open_port)  # one answered
    return packets


def test_a_port_scan_is_one_finding_with_ranges_and_open_ports(tmp_path):
    result = check(tmp_path, port_scan())
    (scan,) = [f for f in result.findings if f.kind == "scan"]
    assert [f for f in result.findings if f.kind == "flow"] == []
    assert scan.id == stable_id("scan", USER)
    assert (scan.flows, scan.initiator, scan.responder) == (41, USER, N1)
    assert scan.ports == "tcp 8443, 9000-9039"
    assert scan.open_ports == "tcp 8443"
    assert scan.outcomes == {"established": 1, "refused": 40}
    assert scan.severity == "error"  # a forbidden port answered
    assert "scanned" in scan.message and "15+ ports" in scan.message
    assert "exceptions:" in scan.suggestion and "scanner" in scan.suggestion


def test_a_blocked_scan_is_still_a_warning_and_below_the_threshold_it_is_not_a_scan(tmp_path):
    blocked = check(tmp_path / "a", port_scan()[:-8])  # without the answered session
    (scan,) = [f for f in blocked.findings if f.kind == "scan"]
    assert scan.severity == "warning" and scan.open_ports is None
    few = check(tmp_path / "b", port_scan(10)[:-8])
    assert {f.kind for f in few.findings} == {"flow", "coverage"}
    assert len([f for f in few.findings if f.kind == "flow"]) == 10  # ten ports, ten problems
    lower = check(tmp_path / "c", port_scan(10)[:-8], Thresholds(scan_ports=10))
    assert [f.kind for f in lower.findings if f.kind != "coverage"] == ["scan"]


def test_an_address_sweep_is_a_scan(tmp_path):
    packets = []
    for k in range(30):
        packets += [syn(USER, f"10.0.3.{k + 1}", 40000 + k, 23)]
    result = check(tmp_path, packets)
    (scan,) = [f for f in result.findings if f.kind == "scan"]
    assert (scan.responders, scan.ports, scan.outcomes) == (30, "tcp 23", {"unanswered": 30})


def test_many_sources_are_one_finding_and_unanswered_ones_a_flood(tmp_path):
    sources = [f"192.0.2.{k}" for k in range(1, 13)]
    packets = [syn(s, N1, 1000 + k, 443) for k, s in enumerate(sources)]
    result = check(tmp_path, packets)
    (flood,) = [f for f in result.findings if f.kind != "coverage"]
    assert (flood.kind, flood.verdict, flood.initiators, flood.initiator) == (
        "flood",
        "unexpected-source",
        12,
        None,
    )
    assert flood.id == stable_id("unexpected-source", "*", "nodes", "tcp", 443)
    assert flood.severity == "warning"
    few = check(tmp_path / "few", packets[:5])
    assert [f.initiator for f in few.findings if f.kind == "flow"] == sorted(
        sources[:5], key=lambda a: int(a.rsplit(".", 1)[1])
    ) or len([f for f in few.findings if f.kind == "flow"]) == 5


def test_many_forbidden_ports_between_two_roles_are_one_finding(tmp_path):
    packets = []
    for k, node in enumerate([N1, N2, N3] * 6):  # 18 ports, never 15 on one host
        packets += tcp_session(USER, node, 40000 + k, 9100 + k)
    result = check(tmp_path, packets)
    (wide,) = [f for f in result.findings if f.kind == "flow"]
    assert (wide.flows, wide.port, wide.ports) == (18, None, "9100-9117")
    assert wide.id == stable_id("unexpected-port", "users", "nodes", "tcp", "*")


def test_a_failure_of_a_service_otherwise_established_is_intermittent(tmp_path):
    packets = (
        tcp_session(N1, N2, 40000, 7000)
        + tcp_session(N2, N3, 40001, 7000)
        + refused(N3, N1, 40002, 7000)
    )
    result = check(tmp_path, packets)
    (f,) = [f for f in result.findings if f.kind == "flow"]
    assert (f.verdict, f.severity, f.flows, f.attempts) == ("allowed", "warning", 1, 3)
    assert "intermittent: 1 of 3 attempts failed while 2 were established" in f.message
    alone = check(tmp_path / "alone", refused(N3, N1, 40002, 7000))
    (g,) = [g for g in alone.findings if g.kind == "flow"]
    assert g.severity == "error" and g.part_of is not None


def test_watch_ticks_give_the_check_roll_ups(tmp_path):
    """Flows seen in small ticks: the scan and the many sources are decided across
    ticks, and per-host findings made before are folded, as check groups them."""
    packets = port_scan() + [syn(f"192.0.2.{k}", N1, 1000 + k, 443) for k in range(1, 13)]
    site = write_site(tmp_path)
    whole = check(tmp_path, packets)
    matrix = load_matrix([str(site.matrix)])
    w = Watcher(matrix, load_inventory(str(site.inventory), matrix), today=TODAY)
    frames = [ether(p) for p in packets]
    for k in range(0, len(frames), 8):  # whole flows per tick
        w.add(*decode(raw_batch(frames[k : k + 8], start=k * 10**9, first_frame=k + 1)))
        w.tick(w.last_ts + 200 * 10**9)
    result = w.finish()
    expected = {f.id: (f.kind, f.flows, f.severity) for f in whole.findings}
    assert {f.id: (f.kind, f.flows, f.severity) for f in result.findings} == expected
