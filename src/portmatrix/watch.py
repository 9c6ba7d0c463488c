"""Live monitoring: the check pipeline run continuously over a packet stream.

Packets go into a flow table as they come. Every tick, flows that are over
(closed, or idle) leave the table and are classified for good: their findings
and coverage stay as counters, so memory is bounded by the live flows. Live
flows that changed since the last tick are classified too, without leaving, so
a violation is reported while it happens, not when it ends (idle ones are not
judged again: nothing about them changed). A finding is announced once, the
first time its id is seen (and again only if its severity rises); repeats only
update counters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from portmatrix.classify import classify
from portmatrix.decode.batch import DecodeCounts, PacketBatch
from portmatrix.decode.transport import TCP
from portmatrix.findings import (
    SEVERITIES,
    Coverage,
    Finding,
    JudgedResult,
    coverage,
    coverage_finding,
    flow_findings,
    matrix_findings,
    required_status,
    sort_findings,
)
from portmatrix.flows import Flows, FlowTable
from portmatrix.hashing import mix
from portmatrix.inventory import Inventory, build_role_map
from portmatrix.lookup import VERDICTS, RuleIndex
from portmatrix.matrix import Matrix
from portmatrix.sources.base import CaptureInfo
from portmatrix.traffic import CaptureHealth, one_way_tcp

PAIRS_KEPT = 10_000  # distinct endpoint pairs remembered per rule (beyond: counted as seen)


@dataclass
class Event:
    """Something to tell the user now: a new finding, or one that got worse."""

    kind: str  # new | escalated
    finding: Finding


@dataclass
class WatchTraffic(CaptureHealth):
    """What the final report says about the traffic of the watched window."""

    counts: DecodeCounts
    captures: list[CaptureInfo]
    flow_count: int = 0
    tcp_flows: int = 0
    tcp_one_way: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    extra_drops: int = 0  # interface drops seen by the kernel, beyond the capture's own
    fragments_unresolved: int = 0

    @property
    def packets(self) -> int:
        return self.counts.frames

    @property
    def drops(self) -> int:
        return sum(c.drops for c in self.captures) + self.extra_drops


@dataclass
class WatchResult(JudgedResult):
    """The final report of a watch, in the shape the check reports read."""

    traffic: WatchTraffic
    matrix: Matrix
    inventory: Inventory | None
    findings: list[Finding]
    coverage: list[Coverage]
    verdicts: dict[str, int]
    notices: list[str] = field(default_factory=list)
    known: int = 0

    def verdict_counts(self) -> dict[str, int]:
        return dict(self.verdicts)


def _merge_finding(old: Finding, new: Finding) -> Finding:
    """One finding's counters over two sets of flows (old first)."""
    outcomes = dict(old.outcomes)
    for k, v in new.outcomes.items():
        outcomes[k] = outcomes.get(k, 0) + v
    sev = max(old.severity, new.severity, key=SEVERITIES.index)
    return replace(
        old,
        severity=sev,
        flows=old.flows + new.flows,
        packets=old.packets + new.packets,
        bytes=old.bytes + new.bytes,
        outcomes=outcomes,
        first_seen=min(filter(None, (old.first_seen, new.first_seen)), default=None),
        last_seen=max(filter(None, (old.last_seen, new.last_seen)), default=None),
        heuristic=old.heuristic and new.heuristic,
        message=new.message if sev != old.severity else old.message,
    )


class Watcher:
    def __init__(
        self,
        matrix: Matrix,
        inventory: Inventory | None,
        idle: float = 120.0,
        grace: float = 5.0,
        today: dt.date | None = None,
    ) -> None:
        self.matrix = matrix
        self.inventory = inventory
        self.index = RuleIndex(matrix, today)
        self.role_map = build_role_map(matrix, inventory)
        self.names: dict[str, set[int]] = {}  # role hostnames -> addresses DNS answered
        self.idle = int(idle * 1e9)
        self.grace = int(grace * 1e9)
        self.table = FlowTable()
        self.counts = DecodeCounts()
        self.done: dict[str, Finding] = {}  # findings of flows that are over
        self.announced: dict[str, str] = {}  # finding id -> severity announced
        self.verdict_of: dict[str, str] = {}  # finding id -> verdict (for metrics)
        self.verdicts = dict.fromkeys(VERDICTS, 0)
        self.rules: dict[str, Coverage] = {}
        self.pairs: dict[str, set[int]] = {}
        self.flows_done = 0
        self.tcp_flows = 0
        self.tcp_one_way = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None

    @property
    def active(self) -> int:
        return len(self.table.open_idx)

    def add(
        self, rows: PacketBatch, counts: DecodeCounts, names: dict[str, set[int]] | None = None
    ) -> None:
        """A decoded batch, and the hostnames its DNS answers resolve (`dns.learn`)."""
        self.counts.add(counts)
        self.table.update(rows)
        if names:
            self._learn(names)
        if len(rows):
            lo, hi = int(rows.ts.min()), int(rows.ts.max())
            self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
            self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)

    def _learn(self, names: dict[str, set[int]]) -> None:
        """Keep the addresses of the hostnames roles name (no others: memory stays
        bounded over days), and look up roles anew when one gained an address."""
        fresh = False
        for name in names.keys() & self.role_map.hostnames:
            known = self.names.setdefault(name, set())
            fresh |= not names[name] <= known
            known |= names[name]
        if fresh:
            self.role_map = build_role_map(self.matrix, self.inventory, self.names)

    def tick(self, now: int | None = None) -> list[Event]:
        """Retire flows that are over, look at the live ones; what to announce."""
        now = self.last_ts if now is None else now
        if now is None:
            return []
        self._retire(self.table.evict(now, self.idle, self.grace))
        return self._announce(self._findings(self.table.changed()))

    def finish(
        self, captures: list[CaptureInfo] | None = None, extra_drops: int = 0
    ) -> WatchResult:
        """Retire every flow and build the final report of the window. `captures`
        and `extra_drops` (interface drops) say how complete the capture was."""
        self._retire(self.table.finish())
        traffic = WatchTraffic(
            self.counts,
            list(captures or []),
            flow_count=self.flows_done,
            tcp_flows=self.tcp_flows,
            tcp_one_way=self.tcp_one_way,
            first_ts=self.first_ts,
            last_ts=self.last_ts,
            extra_drops=extra_drops,
        )
        covs, cov_findings = self._coverage(traffic.weakened)
        findings = sort_findings(
            list(self.done.values()) + cov_findings + matrix_findings(self.matrix, self.index)
        )
        return WatchResult(
            traffic,
            self.matrix,
            self.inventory,
            findings,
            covs,
            dict(self.verdicts),
            notices=traffic.notices(),
        )

    def final_events(self, result: WatchResult) -> list[Event]:
        """What the end settled: flows retired at the end, and the coverage findings."""
        return self._announce([f for f in result.findings if f.kind != "flow"])

    def _findings(self, flows: Flows) -> list[Finding]:
        if not len(flows):
            return []
        cls = classify(flows, self.index, self.role_map)
        found = flow_findings(flows, cls, self.role_map, self.index, several_files=False)
        # A live flow without an answer yet is undecided: allowed, it has not failed;
        # forbidden, it may still get through. Only what the wire settled is told now;
        # the rest when the flow is over.
        return [f for f in found if set(f.outcomes) - {"unanswered"}]

    def _retire(self, flows: Flows) -> None:
        """Flows that are over: into the permanent counters."""
        if not len(flows):
            return
        cls = classify(flows, self.index, self.role_map)
        for verdict, n in cls.counts().items():
            self.verdicts[verdict] += n
        self.flows_done += len(flows)
        self.tcp_flows += int((flows["proto"] == TCP).sum())
        self.tcp_one_way += one_way_tcp(flows)
        for f in flow_findings(flows, cls, self.role_map, self.index, several_files=False):
            self.done[f.id] = _merge_finding(self.done[f.id], f) if f.id in self.done else f
        covs, _ = coverage(flows, cls, self.matrix, weakened=False)
        for c in covs:
            if not c.flows:
                continue
            total = self.rules.get(c.rule)
            if total is None:
                self.rules[c.rule] = total = replace(
                    c, flows=0, established=0, failed=0, pairs=0, examples=[]
                )
            total.flows += c.flows
            total.established += c.established
            total.failed += c.failed
            total.examples = (total.examples + c.examples)[:3]
        self._count_pairs(flows, cls)

    def _count_pairs(self, flows: Flows, cls) -> None:
        keys = mix(flows["init_hi"], flows["init_lo"], flows["resp_hi"], flows["resp_lo"])
        for k, d in enumerate(cls.decisions):
            if not d.covers:
                continue
            mine = keys[cls.decision == k].tolist()
            for rule in d.covers:
                seen = self.pairs.setdefault(rule, set())
                if len(seen) < PAIRS_KEPT:
                    seen.update(mine[: PAIRS_KEPT - len(seen)])

    def _coverage(self, weakened: bool) -> tuple[list[Coverage], list[Finding]]:
        """Coverage of every rule over the whole window."""
        out, findings = [], []
        for rule in self.matrix.rules:
            total = replace(
                self.rules.get(rule.id) or Coverage.of(rule), pairs=len(self.pairs.get(rule.id, ()))
            )
            if rule.required:
                total.status = required_status(total)
                if total.status != "ok":
                    findings.append(coverage_finding(rule, total, weakened))
            out.append(total)
        return out, findings

    def _announce(self, live: list[Finding]) -> list[Event]:
        events = []
        for f in list(self.done.values()) + live:
            before = self.announced.get(f.id)
            if before is None:
                events.append(Event("new", f))
            elif SEVERITIES.index(f.severity) > SEVERITIES.index(before):
                events.append(Event("escalated", f))
            else:
                continue
            self.announced[f.id] = f.severity
        return events


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
