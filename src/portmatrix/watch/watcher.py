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
from dataclasses import dataclass, field

import numpy as np

from portmatrix.decode.batch import DecodeCounts, PacketBatch
from portmatrix.decode.transport import TCP
from portmatrix.findings.coverage import CoverageTally, link_coverage
from portmatrix.findings.expired import matrix_findings
from portmatrix.findings.grouping import Grouper
from portmatrix.findings.model import (
    SEVERITIES,
    Coverage,
    Finding,
    JudgedResult,
    Thresholds,
    sort_findings,
)
from portmatrix.findings.tracked import Tracked
from portmatrix.flows.filters import FlowFilter
from portmatrix.flows.health import CaptureHealth, one_way_tcp
from portmatrix.flows.model import Flows
from portmatrix.flows.table import FlowTable
from portmatrix.policy.classify import classify
from portmatrix.policy.inventory import Inventory
from portmatrix.policy.lookup import VERDICTS, RuleIndex
from portmatrix.policy.matrix import Matrix
from portmatrix.policy.roles import build_role_map
from portmatrix.sources.base import CaptureInfo

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
    fragments_incomplete: int = 0
    fragments_overlapping: int = 0
    remarks: list[str] = field(default_factory=list)

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
    filters: FlowFilter = field(default_factory=FlowFilter)  # watch narrows nothing
    thresholds: Thresholds = field(default_factory=Thresholds)
    command: list[str] | None = None
    created: str | None = None
    observer: dict = field(default_factory=dict)  # hostname, interfaces

    def verdict_counts(self) -> dict[str, int]:
        return dict(self.verdicts)


class Watcher:
    def __init__(
        self,
        matrix: Matrix,
        inventory: Inventory | None,
        idle: float = 120.0,
        grace: float = 5.0,
        today: dt.date | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.matrix = matrix
        self.grouper = Grouper(thresholds)
        self.inventory = inventory
        self.index = RuleIndex(matrix, today)
        self.role_map = build_role_map(matrix, inventory)
        self.names: dict[str, set[int]] = {}  # role hostnames -> addresses DNS answered
        self.idle = int(idle * 1e9)
        self.grace = int(grace * 1e9)
        self.table = FlowTable()
        self.counts = DecodeCounts()
        self.done: dict[str, Tracked] = {}  # problems of flows that are over, by id
        self.announced: dict[str, str] = {}  # finding id -> severity announced
        self.verdict_of: dict[str, str] = {}  # finding id -> verdict, of those announced
        self.verdicts = dict.fromkeys(VERDICTS, 0)
        self.coverage = CoverageTally(matrix, pairs_kept=PAIRS_KEPT)
        self.flows_done = 0
        self.tcp_flows = 0
        self.tcp_one_way = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None

    def now_text(self) -> str | None:
        """The newest packet's time (ISO 8601 UTC): when a finding was seen."""
        if self.last_ts is None:
            return None
        from portmatrix.textforms import iso

        return str(iso(np.array([self.last_ts]))[0])

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
        covs, cov_findings = self.coverage.result(traffic.weakened)
        self._fold()
        flows = [t.worded(self.coverage.rules) for t in self.done.values()]
        findings = flows + cov_findings + matrix_findings(self.matrix, self.index)
        link_coverage(findings)
        findings = sort_findings(findings)
        return WatchResult(
            traffic,
            self.matrix,
            self.inventory,
            findings,
            covs,
            dict(self.verdicts),
            notices=traffic.notices(),
            thresholds=self.grouper.thresholds,
        )

    def final_events(self, result: WatchResult) -> list[Event]:
        """What the end settled: flows retired at the end, and the coverage findings."""
        return self._announce([f for f in result.findings if f.kind in ("coverage", "matrix")])

    def _findings(self, flows: Flows) -> list[Finding]:
        if not len(flows):
            return []
        cls = classify(flows, self.index, self.role_map)
        found = self.grouper.findings(flows, cls, self.role_map, self.index, self.coverage.rules)
        # A live flow without an answer yet is undecided: allowed, it has not failed;
        # forbidden, it may still get through. Only what the wire settled is told now;
        # the rest when the flow is over.
        return [f for f in found if set(f.outcomes) - {"unanswered"} or f.kind in ("scan", "flood")]

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
        self.coverage.add(flows, cls)
        for f in self.grouper.findings(flows, cls, self.role_map, self.index, self.coverage.rules):
            t = Tracked.of(f, flows, cls.answered)
            if f.id in self.done:
                self.done[f.id].add(t)
            else:
                self.done[f.id] = t

    def _fold(self) -> None:
        """Findings made for one host before its roll-up reached its threshold (many
        sources, a scan) join the roll-up's finding, as a check on the whole
        capture would have grouped them."""
        for _ in range(2):  # a host's finding into many sources, that into many ports
            for fid, t in list(self.done.items()):
                into = self.grouper.roll_up_of(t.problem, t.finding, t.only_initiator)
                if into and into != fid and into in self.done:
                    self.done[into].add(self.done.pop(fid))

    def _announce(self, live: list[Finding]) -> list[Event]:
        events = []
        for f in [t.finding for t in self.done.values()] + live:
            before = self.announced.get(f.id)
            if before is None:
                events.append(Event("new", f))
            elif SEVERITIES.index(f.severity) > SEVERITIES.index(before):
                events.append(Event("escalated", f))
            else:
                continue
            self.announced[f.id] = f.severity
            self.verdict_of[f.id] = f.verdict
        return events
