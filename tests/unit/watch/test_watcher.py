"""The Watcher: live classification with bounded memory, findings announced once."""

from __future__ import annotations

import pytest
from scapy.layers.inet import TCP

from portmatrix.check import run_check
from portmatrix.decode import decode
from portmatrix.policy.inventory import load_inventory
from portmatrix.policy.matrix import load_matrix
from portmatrix.sources.capture import Capture
from portmatrix.testing.captures import ether, ip, raw_batch, tcp_session
from portmatrix.watch.watcher import Watcher
from support import paths
from support.site import N1, N2, USER

DEMO, DEMO_INVENTORY = str(paths.DEMO), str(paths.DEMO_INVENTORY)
SECOND = 1_000_000_000


def demo_watcher() -> Watcher:
    matrix = load_matrix(["thoughtspot"])
    return Watcher(matrix, load_inventory(DEMO_INVENTORY, matrix))


@pytest.fixture
def site_watcher(site):
    """`site_watcher(name="small", **options)`: a Watcher of a site of support/site.py."""

    def make(name: str = "small", **options) -> Watcher:
        paths = site(name)
        matrix = load_matrix([str(paths.matrix)])
        return Watcher(matrix, load_inventory(str(paths.inventory), matrix), **options)

    return make


def test_watching_a_capture_gives_the_check_result(small_chunks):
    w = demo_watcher()
    events = []
    for raw in Capture(DEMO).batches():
        w.add(*decode(raw))
        events += w.tick()
    result = w.finish()
    events += w.tick()
    check = run_check([DEMO], ["thoughtspot"], DEMO_INVENTORY)
    assert result.verdict_counts() == check.verdict_counts()
    assert sorted(f.id for f in result.findings) == sorted(f.id for f in check.findings)
    flows = {f.id: (f.severity, f.flows, f.packets) for f in check.findings if f.kind == "flow"}
    assert {
        f.id: (f.severity, f.flows, f.packets) for f in result.findings if f.kind == "flow"
    } == flows
    required = [(c.rule, c.status, c.established, c.failed, c.pairs) for c in check.coverage]
    assert [
        (c.rule, c.status, c.established, c.failed, c.pairs) for c in result.coverage
    ] == required
    # Every flow finding was announced once, while the capture was read.
    announced = [e.finding.id for e in events if e.kind == "new"]
    assert sorted(announced) == sorted(flows)


def test_flows_that_are_over_leave_the_table():
    w = demo_watcher()
    for raw in Capture(DEMO).batches():
        w.add(*decode(raw))
    assert w.active == 40 and w.flows_done == 0
    w.tick(w.last_ts + 200 * SECOND)  # past the idle timeout of every flow
    assert w.active == 0 and w.flows_done == 40
    assert sum(w.verdicts.values()) == 40


def test_closed_flows_leave_after_the_grace_not_before(site_watcher):
    w = site_watcher(idle=120, grace=5)
    batch = raw_batch([ether(p) for p in tcp_session(N1, N2, 40000, 7000)])
    w.add(*decode(batch))
    w.tick(w.last_ts + 1 * SECOND)
    assert w.active == 1
    w.tick(w.last_ts + 6 * SECOND)
    assert (w.active, w.flows_done) == (0, 1)


def test_a_forbidden_flow_is_announced_once_then_again_when_it_gets_worse(site_watcher):
    w = site_watcher()
    first = [ether(p) for p in tcp_session(USER, N1, 40000, 8443, close="open")]
    w.add(*decode(raw_batch(first[:1])))  # a SYN alone: undecided, nothing to tell yet
    assert w.tick() == []
    refusal = ether(ip(N1, USER) / TCP(sport=8443, dport=40000, flags="RA", ack=1001))
    w.add(*decode(raw_batch([refusal], start=SECOND, first_frame=2)))  # blocked: info
    (blocked,) = w.tick()
    assert (blocked.kind, blocked.finding.verdict, blocked.finding.severity) == (
        "new",
        "unexpected-port",
        "info",
    )
    assert w.tick() == []  # repeats stay quiet
    again = [ether(p) for p in tcp_session(USER, N1, 40001, 8443, close="open")]
    w.add(*decode(raw_batch(again, start=2 * SECOND, first_frame=3)))  # got through
    (worse,) = w.tick()
    assert (worse.kind, worse.finding.id, worse.finding.severity) == (
        "escalated",
        blocked.finding.id,
        "error",
    )
    assert w.tick() == []


def test_an_unanswered_forbidden_attempt_is_told_when_it_is_over(site_watcher):
    w = site_watcher()
    syn = [ether(p) for p in tcp_session(USER, N1, 40000, 8443, close="open")][:1]
    w.add(*decode(raw_batch(syn)))
    assert w.tick() == []
    (event,) = w.tick(w.last_ts + 200 * SECOND)  # idle: over, never answered
    assert (event.finding.severity, event.finding.outcomes) == ("info", {"unanswered": 1})


def test_a_live_allowed_flow_without_answer_yet_is_not_a_failure(site_watcher):
    w = site_watcher()
    syn = [ether(p) for p in tcp_session(N1, N2, 40000, 7000, close="open")][:1]
    w.add(*decode(raw_batch(syn)))
    assert w.tick() == []  # in progress: not "allowed but unanswered" yet
    w.tick(w.last_ts + 200 * SECOND)  # over, never answered: now it is
    result = w.finish()
    (finding,) = [f for f in result.findings if f.kind == "flow"]
    assert (finding.verdict, finding.severity, finding.outcomes) == (
        "allowed",
        "error",
        {"unanswered": 1},
    )


@pytest.mark.parametrize(
    "text,seconds", [("30s", 30), ("10m", 600), ("2h", 7200), ("1.5", 1.5), ("1d", 86400)]
)
def test_durations(text, seconds):
    from portmatrix.cli import _Duration

    assert _Duration().convert(text, None, None) == seconds


def test_bad_duration_is_a_usage_error(run_cli):
    result = run_cli("watch", "-i", "lo", "--rules", "thoughtspot", "--duration", "soon")
    assert result.exit_code == 2
    assert "is not a duration" in result.stderr


def test_drops_weaken_the_final_coverage_and_say_so():
    w = demo_watcher()
    result = w.finish(extra_drops=5123)  # nothing seen, and the interfaces dropped packets
    assert result.traffic.weakened
    coverage = [f for f in result.findings if f.kind == "coverage"]
    assert coverage and {f.severity for f in coverage} == {"warning"}
    assert any("5123 dropped packets" in n for n in result.notices)


def test_a_dns_answer_seen_live_gives_a_role_its_address(site_watcher):
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import UDP

    from portmatrix.decode.dns import learn

    w = site_watcher("by-hostname")  # telemetry.vendor.example: known by name only
    answer = DNS(id=1, qr=1, qd=[DNSQR(qname="telemetry.vendor.example")])
    answer.an = [DNSRR(rrname="telemetry.vendor.example", rdata="203.0.113.80")]
    other = DNS(id=2, qr=1, qd=[DNSQR(qname="x.example")])
    other.an = [DNSRR(rrname="x.example", rdata="198.51.100.9")]
    lookups = raw_batch(
        [
            ether(ip("10.0.0.53", "10.0.0.1") / UDP(sport=53, dport=5000) / d)
            for d in (answer, other)
        ]
    )
    rows, counts = decode(lookups)
    w.add(rows, counts, learn(lookups, rows, frozenset({"telemetry.vendor.example", "x.example"})))
    assert w.names == {
        "telemetry.vendor.example": {0xFFFF_CB00_7150}
    }  # 203.0.113.80; x.example not kept
    https = [ether(p) for p in tcp_session("10.0.0.1", "203.0.113.80", 40000, 443)]
    w.add(*decode(raw_batch(https, start=SECOND, first_frame=3)))
    assert [e.finding.port for e in w.tick()] == [53]  # the lookup itself, not the 443 flow
    result = w.finish()
    assert result.verdicts["allowed"] == 1
    assert [f.port for f in result.findings if f.kind == "flow"] == [53]
