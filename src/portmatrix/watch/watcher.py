"""Live monitoring: the check pipeline run continuously over a packet stream.

Packets go into a flow table as they come. Every tick, flows that are over
(closed, or idle) leave the table and are classified for good: their findings
and coverage stay as counters, so memory is bounded by the live flows. Live
flows that changed since the last tick are classified too, without leaving, so
a violation is reported while it happens, not when it ends (idle ones are not
judged again: nothing about them changed). A finding is announced once, the
first time its id is seen (and again only if its severity rises); repeats only
update counters. Required services are judged over a sliding window as it runs
(`watch.coverage`): an alarm when one stops, an event when it comes back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from portmatrix.decode.batch import DecodeCounts, PacketBatch
from portmatrix.decode.transport import TCP
from portmatrix.findings.coverage import (
    CoverageTally,
    judged_coverage,
    link_coverage,
    unheld_roles,
)
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
from portmatrix.flows.model import UNANSWERED, Flows
from portmatrix.flows.table import FlowTable
from portmatrix.policy.classify import classify, matrix_port
from portmatrix.policy.inventory import Inventory
from portmatrix.policy.lookup import VERDICTS, RuleIndex
from portmatrix.policy.matrix import Matrix
from portmatrix.policy.roles import build_role_map
from portmatrix.sources.base import CaptureInfo
from portmatrix.times import stamp
from portmatrix.watch.coverage import CoverageWindow

PAIRS_KEPT = 10_000  # distinct endpoint pairs remembered per rule (beyond: counted as seen)
PIECE = 16_384  # flows judged at once: a tick's memory does not grow with a flood


def _pieces(flows: Flows):
    """`flows` in pieces of at most PIECE."""
    for lo in range(0, len(flows), PIECE):
        yield (
            flows if len(flows) <= PIECE else flows.take(np.arange(lo, min(lo + PIECE, len(flows))))
        )


EVENT_KINDS = ("new", "escalated", "recovered")
"""new: a finding seen for the first time (or a required service that stopped);
escalated: a finding announced before got more severe; recovered: a required
service that had stopped is established again."""


@dataclass
class Event:
    """Something to tell the user now (EVENT_KINDS)."""

    kind: str
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
    lost: int | None = None  # packets lost, all counted (watch.drops); None: the captures'
    fragments_unresolved: int = 0
    fragments_incomplete: int = 0
    fragments_overlapping: int = 0
    remarks: list[str] = field(default_factory=list)

    @property
    def packets(self) -> int:
        return self.counts.frames

    @property
    def drops(self) -> int:
        return sum(c.drops for c in self.captures) if self.lost is None else self.lost


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
        half_open: float = 10.0,
        today: dt.date | None = None,
        thresholds: Thresholds | None = None,
        coverage_window: float = 600.0,
    ) -> None:
        self.matrix = matrix
        self.grouper = Grouper(thresholds)
        self.inventory = inventory
        self.index = RuleIndex(matrix, today)
        self.role_map = build_role_map(matrix, inventory)
        self.names: dict[str, set[int]] = {}  # role hostnames -> addresses DNS answered
        self.idle = int(idle * 1e9)
        self.grace = int(grace * 1e9)
        self.half_open = int(half_open * 1e9)
        self.table = FlowTable()
        self.counts = DecodeCounts()
        self.done: dict[str, Tracked] = {}  # problems of flows that are over, by id
        self.announced: dict[str, str] = {}  # finding id -> severity announced
        self.verdict_of: dict[str, str] = {}  # finding id -> verdict, of those announced
        self.verdicts = dict.fromkeys(VERDICTS, 0)
        self.coverage = CoverageTally(matrix, pairs_kept=PAIRS_KEPT)
        self.window = CoverageWindow(matrix, int(coverage_window * 1e9))
        self.flows_done = 0
        self.tcp_flows = 0
        self.tcp_one_way = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        # Across restarts (watch.state): since when, over how many runs, drops before.
        self.since = stamp()
        self.runs = 1
        self.carried_drops = 0

    def now_text(self) -> str | None:
        """The newest packet's time (ISO 8601 UTC): when a finding was seen."""
        if self.last_ts is None:
            return None
        from portmatrix.textforms import iso

        return str(iso(np.array([self.last_ts]))[0])

    @property
    def active(self) -> int:
        return len(self.table.open_idx)

    def one_way(self) -> bool:
        """Most TCP flows so far were seen in one direction only (CaptureHealth)."""
        return self.tcp_flows >= 4 and self.tcp_one_way * 2 > self.tcp_flows

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
            self.relearn()

    def relearn(self) -> None:
        """Look up roles anew with the addresses learnt from DNS (`names`)."""
        self.role_map = build_role_map(self.matrix, self.inventory, self.names)

    def tick(self, now: int | None = None) -> list[Event]:
        """Retire flows that are over, look at the live ones; what to announce."""
        now = self.last_ts if now is None else now
        if now is None:
            return []
        while True:  # a flood's end in pieces: memory stays bounded by PIECE
            gone = self.table.evict(now, self.idle, self.grace, self.half_open, PIECE)
            for piece in _pieces(gone):
                self._retire(piece)
            if len(gone) < PIECE:
                break
        changed = self.table.changes(answered=True, piece=PIECE)
        live = [f for piece in changed for f in self._findings(piece)]
        return self._announce(live)

    def judge(self, now: int, weakened: bool = False) -> list[Event]:
        """Required services over the sliding window, as of `now` (ns): alarms
        raised (announced once) and ended."""
        events = []
        for change in self.window.judge(
            now, weakened, frozenset(unheld_roles(self.matrix, self.role_map))
        ):
            f = change.finding
            if change.kind == "recovered":
                self.announced.pop(f.id, None)
                self.verdict_of.pop(f.id, None)
                events.append(Event("recovered", f))
            else:
                events += self._announce([f])
        return events

    def finish(
        self,
        captures: list[CaptureInfo] | None = None,
        drops: int | None = None,
        remarks: list[str] | None = None,
    ) -> WatchResult:
        """Retire every flow and build the final report of the window. `captures`
        and `drops` (every packet lost, `watch.drops`; the captures' own count when
        None) say how complete the capture was; `remarks` join the notices."""
        self._retire(self.table.finish())
        traffic = WatchTraffic(
            self.counts,
            list(captures or []),
            flow_count=self.flows_done,
            tcp_flows=self.tcp_flows,
            tcp_one_way=self.tcp_one_way,
            first_ts=self.first_ts,
            last_ts=self.last_ts,
            lost=None if drops is None else drops + self.carried_drops,
            remarks=list(remarks or []) + self._carried(),
        )
        seen = bool(self.counts.frames or self.flows_done)
        covs, cov_findings = judged_coverage(
            self.coverage, self.role_map, traffic.weakened, seen, traffic.captures
        )
        judged = {f.rule for f in cov_findings}
        # A service that stopped while watching: the whole window saw it, the end did not.
        cov_findings += [
            self.window.alarm_finding(rule, traffic.weakened)
            for rule in self.window.active().values()
            if rule not in judged
        ]
        self._fold()
        flows = [
            t.worded(self.coverage.rules) if t.problem is not None else t.finding
            for t in self.done.values()
        ]
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

    def _carried(self) -> list[str]:
        if self.runs == 1:
            return []
        return [
            f"this report counts since {self.since}, over {self.runs} runs of watch (its "
            "state file carried the findings and counters across restarts; the time it "
            "was not running is not covered)"
        ]

    def final_events(self, result: WatchResult) -> list[Event]:
        """What the end settled: flows retired at the end, and the coverage findings."""
        return self._announce([f for f in result.findings if f.kind in ("coverage", "matrix")])

    def _findings(self, flows: Flows) -> list[Finding]:
        """Live flows that changed: what the wire has settled about them.

        A live flow without an answer yet is undecided: allowed, it has not failed;
        forbidden, it may still get through. Only flows the wire settled (answered,
        refused) are judged now; the rest when they are over. So a flood of
        unanswered SYNs is told when its attempts time out (--half-open-timeout),
        and costs nothing while it lasts."""
        flows = flows.take(np.flatnonzero(flows["outcome"] != UNANSWERED))
        if not len(flows):
            return []
        cls = classify(flows, self.index, self.role_map)
        self.window.add(flows, cls, settled=False)
        return self.grouper.findings(flows, cls, self.role_map, self.index, self.coverage.rules)

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
        self.window.add(flows, cls, settled=True)
        port = matrix_port(flows)
        for f in self.grouper.findings(flows, cls, self.role_map, self.index, self.coverage.rules):
            t = Tracked.of(f, flows, cls.answered, port)
            before = self.done.get(f.id)
            if before is None:
                self.done[f.id] = t
            elif before.problem is None:  # carried over a restart: the new one words it
                t.add(before)
                self.done[f.id] = t
            else:
                before.add(t)

    def _fold(self) -> None:
        """Findings made for one host before its roll-up reached its threshold (many
        sources, a scan) join the roll-up's finding, as a check on the whole
        capture would have grouped them."""
        for _ in range(2):  # a host's finding into many sources, that into many ports
            for fid, t in list(self.done.items()):
                if t.problem is None:  # carried over a restart, as it was folded then
                    continue
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
