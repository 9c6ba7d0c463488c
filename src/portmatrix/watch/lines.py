"""The lines `watch` prints while it runs: new findings, periodic summaries (the
time stamp in front is added where they are written: `watch.outputs`). Rule
texts and names from packets are in them: control characters are made visible."""

from __future__ import annotations

import time
from dataclasses import dataclass

from portmatrix.report.escape import visible
from portmatrix.textforms import service_text
from portmatrix.watch.watcher import Event, Watcher

LABELS = {"new": "NEW", "escalated": "WORSE", "recovered": "RECOVERED"}


def event_line(event: Event) -> str:
    f = event.finding
    if f.kind in ("coverage", "matrix"):
        what = f"rule {f.rule}"
    else:
        who = f.initiator or ", ".join(f.initiator_roles) or f"{f.initiators} sources"
        whom = f.responder or ", ".join(f.responder_roles) or f"{f.responders} hosts"
        service = service_text(f.proto, f.port) if f.port is not None else f.ports or f.proto
        what = f"{who} → {whom} {service}"
    return visible(f"{LABELS[event.kind]} {f.severity} {f.verdict} {what} [{f.id}] {f.message}")


@dataclass
class Totals:
    """The figures of the last summary, so the next one says what changed since."""

    at: float = 0.0  # time.monotonic()
    packets: int = 0
    bytes: int = 0
    drops: int = 0


def summary_line(w: Watcher, meter, last: Totals, wire_bytes: int) -> str:
    """The periodic one-line summary: traffic and its rates since the last summary,
    flows, findings by verdict, drops (and those since the last summary)."""
    now = time.monotonic()
    seconds = max(now - last.at, 1e-9) if last.at else None
    packets, drops = w.counts.frames, meter.total()
    by_verdict: dict[str, int] = {}
    for verdict in w.verdict_of.values():
        by_verdict[verdict] = by_verdict.get(verdict, 0) + 1
    findings = ", ".join(f"{v} {n}" for v, n in sorted(by_verdict.items())) or "none"
    rate = ""
    if seconds:
        rate = (
            f" ({(packets - last.packets) / seconds:,.0f}/s, "
            f"{(wire_bytes - last.bytes) * 8 / seconds / 1e6:,.1f} Mbit/s)"
        )
    behind = int(meter.backlog().sum())
    line = (
        f"{packets:,} packets{rate}; flows: {w.flows_done:,} done, {w.active:,} active; "
        f"findings: {findings}; dropped {drops:,} (+{drops - last.drops:,})"
        + (f"; {behind:,} not read yet" if behind else "")
    )
    last.at, last.packets, last.bytes, last.drops = now, packets, wire_bytes, drops
    return line
