"""The Watcher: live classification with bounded memory, findings announced once."""

from __future__ import annotations

import numpy as np
import pytest
from scapy.layers.inet import TCP

from portmatrix.check import run_check
from portmatrix.decode import decode
from portmatrix.findings.model import stable_id
from portmatrix.policy.inventory import load_inventory
from portmatrix.policy.matrix import load_matrix
from portmatrix.sources.capture import Capture
from portmatrix.testing.captures import T0, ether, ip, raw_batch, tcp_session
from portmatrix.textforms import iso
from portmatrix.watch.watcher import Watcher
from support import paths
from support.live_traffic import SECOND, service_stops
from support.site import N1, N2, USER

DEMO, DEMO_INVENTORY = str(paths.DEMO), str(paths.DEMO_INVENTORY)


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
    for raw in Capture(DEMO).batches():
        w.add(*decode(raw))
    result = w.finish(drops=5123)  # the capture lost packets
    assert result.traffic.weakened
    coverage = [f for f in result.findings if f.kind == "coverage"]
    assert coverage and all("the capture is incomplete" in f.message for f in coverage)
    # Warnings, unless a failed flow of the rule makes one an error (it rests on them).
    assert {f.severity for f in coverage if not f.rests_on} == {"warning"}
    assert any("5123 dropped packets" in n for n in result.notices)


def test_no_traffic_at_all_judges_no_coverage():
    result = demo_watcher().finish()
    assert not [f for f in result.findings if f.kind == "coverage"]


# Required services over a sliding window ------------------------------------------


def watch_seconds(w: Watcher, seconds) -> list[tuple[int, str, str, str]]:
    """Feed each second's frames, tick and judge half a second later; (second, event,
    verdict, rule) of every coverage event."""
    out = []
    for t, frames_of_t in enumerate(seconds):
        w.add(*decode(raw_batch(frames_of_t, first_frame=1 + 100 * t)))
        now = T0 + t * SECOND + SECOND // 2
        for e in w.tick(now) + w.judge(now):
            if e.finding.kind == "coverage":
                out.append((t, e.kind, e.finding.verdict, e.finding.rule))
    return out


def test_a_required_service_that_stops_half_way_raises_once_and_recovers(site_watcher):
    w = site_watcher(coverage_window=10)
    events = watch_seconds(w, service_stops(70, gap=(30, 60)))
    # Last established early in second 29: judged missing at 39.5 s, back at 60.
    assert events == [
        (39, "new", "missing-required", "node-rpc"),
        (60, "recovered", "missing-required", "node-rpc"),
    ]


def test_an_alarm_says_when_the_service_was_last_seen(site_watcher):
    w = site_watcher(coverage_window=10)
    raised = []
    for t, frames_of_t in enumerate(service_stops(45, gap=(30, 60))):
        w.add(*decode(raw_batch(frames_of_t, first_frame=1 + 100 * t)))
        now = T0 + t * SECOND + SECOND // 2
        w.tick(now)
        raised += [e.finding for e in w.judge(now)]
    (alarm,) = raised
    last = iso(np.array([T0 + 29 * SECOND]))[0][:19]  # the session of second 29 ...
    assert f"no established flow in the last 10 s (last established {last}" in alarm.message
    assert alarm.last_seen.startswith(last) and alarm.severity == "error"
    assert alarm.id == stable_id("missing-required", "node-rpc")  # as check names it


def test_refused_attempts_make_it_required_unreachable(site_watcher):
    w = site_watcher(coverage_window=10)
    events = watch_seconds(w, service_stops(70, gap=(30, 60), during_gap="refused"))
    assert events[0] == (39, "new", "required-unreachable", "node-rpc")
    assert events[-1] == (60, "recovered", "required-unreachable", "node-rpc")
    assert len(events) == 2


def test_nothing_is_raised_before_a_whole_window_was_watched(site_watcher):
    w = site_watcher(coverage_window=30)
    events = watch_seconds(w, service_stops(25, gap=(0, 25)))  # rpc never seen at all
    assert events == []
    events = watch_seconds(w, service_stops(40, gap=(0, 40), start=T0))
    assert events[0][1:] == ("new", "missing-required", "node-rpc")


def test_a_silent_capture_raises_nothing(site_watcher):
    """No packet at all in the window: the span broke, not every service."""
    w = site_watcher(coverage_window=10)
    watch_seconds(w, service_stops(5, gap=(0, 0)))
    assert w.judge(T0 + 60 * SECOND) == []


def test_a_service_down_at_the_end_is_in_the_final_report(site_watcher):
    w = site_watcher(coverage_window=10)
    watch_seconds(w, service_stops(50, gap=(30, 50)))
    result = w.finish()
    (cov,) = [c for c in result.coverage if c.rule == "node-rpc"]
    assert cov.status == "ok"  # the whole window saw it established ...
    (alarm,) = [f for f in result.findings if f.kind == "coverage"]
    assert (alarm.rule, alarm.verdict) == ("node-rpc", "missing-required")  # ... not the end
    assert w.final_events(result) == []  # announced when raised, not again


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
    assert w.tick() == []  # the answers alone: one-sided, judged when over
    later = w.tick(w.last_ts + 200 * SECOND)
    assert [e.finding.port for e in later] == [53]  # the lookup itself, not the 443 flow
    result = w.finish()
    assert result.verdicts["allowed"] == 1
    assert [f.port for f in result.findings if f.kind == "flow"] == [53]
