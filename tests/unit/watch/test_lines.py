"""The lines watch prints: one per new or worse finding, and the periodic summary."""

from __future__ import annotations

from dataclasses import replace

from portmatrix.findings.model import Finding
from portmatrix.watch.drops import DropMeter
from portmatrix.watch.lines import Totals, event_line, summary_line
from portmatrix.watch.watcher import Event


def test_event_line_names_what_and_where(demo_watch):
    _, events = demo_watch
    flow = next(e.finding for e in events if e.finding.verdict == "wrong-direction")
    line = event_line(Event("new", flow))
    assert line.startswith("NEW error wrong-direction 10.20.0.11 → 10.30.0.5 tcp/22 [PM-")
    assert line.endswith(f"[{flow.id}] {flow.message}")


def test_a_worse_finding_and_a_rule_finding():
    coverage = Finding(
        id="PM-0123456789",
        severity="warning",
        kind="coverage",
        verdict="missing-required",
        message="required rule node-rpc saw no traffic",
        rule="node-rpc",
    )
    assert event_line(Event("new", coverage)) == (
        "NEW warning missing-required rule node-rpc [PM-0123456789] "
        "required rule node-rpc saw no traffic"
    )
    icmp = replace(
        coverage,
        kind="flow",
        severity="error",
        verdict="unexpected-port",
        initiator="10.0.0.1",
        responder="10.0.0.2",
        proto="icmp",
        port=8,
    )
    assert event_line(Event("escalated", icmp)).startswith(
        "WORSE error unexpected-port 10.0.0.1 → 10.0.0.2 icmp type 8 [PM-0123456789]"
    )


def test_a_service_back_is_recovered():
    coverage = Finding(
        id="PM-0123456789",
        severity="info",
        kind="coverage",
        verdict="missing-required",
        message="required rule node-rpc (RPC) is established again",
        rule="node-rpc",
    )
    assert event_line(Event("recovered", coverage)) == (
        "RECOVERED info missing-required rule node-rpc [PM-0123456789] "
        "required rule node-rpc (RPC) is established again"
    )


def meter(lost: int = 0) -> DropMeter:
    m = DropMeter(["eth0"], None, 0)
    m.at_capture[0] = lost
    return m


def test_summary_line_counts_findings_by_verdict(demo_watch):
    watcher, events = demo_watch
    by_verdict: dict[str, int] = {}
    for e in events:
        by_verdict[e.finding.verdict] = by_verdict.get(e.finding.verdict, 0) + 1
    assert by_verdict  # the demo has findings to count
    line = summary_line(watcher, meter(7), Totals(), 12_345)
    findings = ", ".join(f"{v} {n}" for v, n in sorted(by_verdict.items()))
    assert line == (
        f"268 packets; flows: {watcher.flows_done} done, {watcher.active} active; "
        f"findings: {findings}; dropped 7 (+7)"
    )


def test_summary_line_says_rates_and_drops_since_the_last_one(demo_watch, monkeypatch):
    watcher, _ = demo_watch
    clock = iter([100.0, 102.0])
    monkeypatch.setattr("portmatrix.watch.lines.time.monotonic", lambda: next(clock))
    last = Totals()
    summary_line(watcher, meter(7), last, 1_000)  # the first: nothing to compare with
    assert (last.at, last.packets, last.bytes, last.drops) == (100.0, 268, 1_000, 7)
    last.packets, last.drops = 68, 7  # as if 200 packets and 3 drops came since
    line = summary_line(watcher, meter(10), last, 501_000)
    assert line.startswith("268 packets (100/s, 2.0 Mbit/s); flows: ")
    assert line.endswith("; dropped 10 (+3)")


def test_summary_line_before_any_finding(demo_watch):
    watcher, _ = demo_watch
    watcher.verdict_of.clear()
    assert summary_line(watcher, meter(), Totals(), 0).endswith("findings: none; dropped 0 (+0)")
