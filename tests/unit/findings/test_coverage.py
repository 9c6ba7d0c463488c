"""Coverage of required rules, and how an incomplete capture weakens it."""

from __future__ import annotations

from portmatrix.check import run_check
from portmatrix.testing.captures import Pcapng, ether, tcp_session
from support.packets import icmp_unreachable, only, refused, syn, udp
from support.site import (
    ADMIN,
    N1,
    N2,
    N3,
    USER,
)


def flow_findings(result):
    return [f for f in result.findings if f.kind == "flow"]


# Coverage ------------------------------------------------------------------------


def coverage_of(result):
    return {c.rule: c for c in result.coverage}


def test_coverage_ok_missing_and_unreachable(check_packets):
    packets = (
        tcp_session(N1, N2, 40000, 7000)  # node-rpc established
        + tcp_session(N2, N3, 40001, 7000)  # ... twice, another pair
        + refused(N3, N1, 40002, 7000)  # and one failed attempt: still ok
        + [udp(N1, N2, 40003, 7946)]  # node-gossip: a request nobody answered
    )
    result = check_packets(packets)
    cov = coverage_of(result)
    rpc = cov["node-rpc"]
    assert (rpc.flows, rpc.established, rpc.failed, rpc.pairs, rpc.status) == (3, 2, 1, 3, "ok")
    assert f"{N1} → {N2}" in rpc.examples
    gossip = cov["node-gossip"]
    # UDP silence is not a failed attempt: the service is missing, not blocked.
    assert (gossip.flows, gossip.established, gossip.failed) == (1, 0, 0)
    assert gossip.status == "missing-required"
    assert cov["ssh-from-admins"].status is None  # not required: no status
    findings = {f.rule: f for f in result.findings if f.kind == "coverage"}
    assert set(findings) == {"node-gossip"}
    missing = findings["node-gossip"]
    assert (missing.verdict, missing.severity) == ("missing-required", "error")
    assert "has no established flow" in missing.message


def test_required_unreachable_only_with_failed_attempts(check_packets):
    packets = refused(N1, N2, 40000, 7000) + [syn(N2, N3, 40001, 7000)]
    packets += [udp(N1, N2, 40002, 7946), icmp_unreachable(udp(N1, N2, 40002, 7946))]
    result = check_packets(packets)
    cov = coverage_of(result)
    assert (cov["node-rpc"].established, cov["node-rpc"].failed) == (0, 2)
    assert (cov["node-gossip"].established, cov["node-gossip"].failed) == (0, 1)
    findings = {f.rule: f for f in result.findings if f.kind == "coverage"}
    for rule, attempts in (("node-rpc", 2), ("node-gossip", 1)):
        f = findings[rule]
        assert (f.verdict, f.severity) == ("required-unreachable", "error")
        assert f"had {attempts} attempt(s), none answered" in f.message
        assert f.outcomes == {"failed": attempts}
    assert all(c.status == "required-unreachable" for c in (cov["node-rpc"], cov["node-gossip"]))


def test_coverage_without_traffic(check_packets):
    nothing = check_packets([])  # no traffic at all: nothing to judge coverage by
    assert {c.status for c in nothing.coverage if c.required} == {"not-evaluated"}
    assert not [f for f in nothing.findings if f.kind == "coverage"]
    result = check_packets(tcp_session(USER, N1, 40000, 8443))  # traffic, none of theirs
    findings = [f for f in result.findings if f.kind == "coverage"]
    assert {(f.rule, f.verdict, f.severity) for f in findings} == {
        ("node-rpc", "missing-required", "error"),
        ("node-gossip", "missing-required", "error"),
    }
    assert "incomplete" not in " ".join(f.message for f in findings)


def one_way(client, server, sport, dport):
    return [p for p in tcp_session(client, server, sport, dport) if p.src == client]


def test_one_way_capture_weakens_coverage(check_packets):
    packets = []
    for k, (client, server, port) in enumerate(
        [(N1, N2, 7000), (USER, N1, 443), (ADMIN, N1, 22), (USER, N2, 443)]
    ):
        packets += one_way(client, server, 40000 + k, port)
    result = check_packets(packets)
    assert result.traffic.mostly_one_way and result.traffic.weakened
    assert any("seen in one direction only" in n for n in result.notices)
    findings = [f for f in result.findings if f.kind == "coverage"]
    assert {f.rule for f in findings} == {"node-gossip"}  # node-rpc's client ACKed: answered
    for f in findings:
        assert f.severity == "warning"
        assert "the capture is incomplete" in f.message


def test_drops_weaken_coverage(site, tmp_path):
    small = site("small")
    capture = Pcapng()
    capture.interface(1)
    capture.packets([ether(p) for p in refused(N1, N2, 40000, 7000)])
    capture.stats(0, received=10, dropped=3)
    path = capture.write(tmp_path / "drops.pcapng")
    result = run_check([str(path)], [str(small.matrix)], str(small.inventory))
    assert result.traffic.drops == 3 and result.traffic.weakened
    assert any("3 dropped packets" in n for n in result.notices)
    findings = {f.rule: f for f in result.findings if f.kind == "coverage"}
    assert findings["node-rpc"].verdict == "required-unreachable"
    assert findings["node-gossip"].severity == "warning"  # nothing seen: maybe dropped
    assert all("incomplete" in f.message for f in findings.values())
    # Flow findings are what the wire showed: the refused attempt stays an error, and
    # the coverage finding that rests on it is one problem with it, as severe.
    refusal = only(flow_findings(result))
    assert refusal.severity == "error"
    assert (refusal.part_of, findings["node-rpc"].rests_on) == (
        findings["node-rpc"].id,
        [refusal.id],
    )
    assert findings["node-rpc"].severity == "error"
    assert result.severity_counts() == {"error": 1, "warning": 1, "info": 0}
