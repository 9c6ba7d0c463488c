"""The lines `watch` prints while it runs: new findings, periodic summaries. Rule
texts and names from packets are in them: control characters are made visible."""

from __future__ import annotations

from portmatrix.report.escape import visible
from portmatrix.textforms import service_text
from portmatrix.watch.watcher import Event, Watcher


def event_line(event: Event) -> str:
    f = event.finding
    if f.kind in ("coverage", "matrix"):
        what = f"rule {f.rule}"
    else:
        who = f.initiator or ", ".join(f.initiator_roles) or f"{f.initiators} sources"
        whom = f.responder or ", ".join(f.responder_roles) or f"{f.responders} hosts"
        service = service_text(f.proto, f.port) if f.port is not None else f.ports or f.proto
        what = f"{who} → {whom} {service}"
    label = "NEW" if event.kind == "new" else "WORSE"
    return visible(f"{label} {f.severity} {f.verdict} {what} [{f.id}] {f.message}")


def summary_line(w: Watcher, drops: int) -> str:
    """The periodic one-line summary: traffic, flows, findings by verdict, drops."""
    by_verdict: dict[str, int] = {}
    for verdict in w.verdict_of.values():
        by_verdict[verdict] = by_verdict.get(verdict, 0) + 1
    findings = ", ".join(f"{v} {n}" for v, n in sorted(by_verdict.items())) or "none"
    return (
        f"{w.counts.frames} packets; flows: {w.flows_done} done, {w.active} active; "
        f"findings: {findings}; interface drops {drops}"
    )
