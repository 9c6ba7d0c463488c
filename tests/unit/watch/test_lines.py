"""The lines watch prints: one per new or worse finding, and the periodic summary."""

from __future__ import annotations

from dataclasses import replace

from portmatrix.findings.model import Finding
from portmatrix.watch.lines import event_line, summary_line
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


def test_summary_line_counts_findings_by_verdict(demo_watch):
    watcher, events = demo_watch
    by_verdict: dict[str, int] = {}
    for e in events:
        by_verdict[e.finding.verdict] = by_verdict.get(e.finding.verdict, 0) + 1
    assert by_verdict  # the demo has findings to count
    line = summary_line(watcher, drops=7)
    findings = ", ".join(f"{v} {n}" for v, n in sorted(by_verdict.items()))
    assert line == (
        f"268 packets; flows: {watcher.flows_done} done, {watcher.active} active; "
        f"findings: {findings}; interface drops 7"
    )


def test_summary_line_before_any_finding(demo_watch):
    watcher, _ = demo_watch
    watcher.verdict_of.clear()
    assert summary_line(watcher, drops=0).endswith("findings: none; interface drops 0")
