"""What the reports render: any result that answers these protocols. The offline
check (`check.Result`) and live watching (`watch.watcher.WatchResult`)
implement them; the reports import neither, so the contract points down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from portmatrix.decode.batch import DecodeCounts
    from portmatrix.findings.model import Coverage, Finding, Thresholds
    from portmatrix.flows.filters import FlowFilter
    from portmatrix.flows.model import Flows
    from portmatrix.policy.classify import Classified
    from portmatrix.policy.inventory import Inventory
    from portmatrix.policy.matrix import Matrix
    from portmatrix.sources.base import CaptureInfo


class TrafficSummary(Protocol):
    """What a report says about the traffic behind a result."""

    counts: DecodeCounts
    captures: list[CaptureInfo]
    packets: int
    flow_count: int
    first_ts: int | None
    last_ts: int | None
    tcp_flows: int
    tcp_one_way: int
    drops: int
    weakened: bool


class Result(Protocol):
    """A judged window of traffic: findings, coverage, counts, notices."""

    traffic: TrafficSummary
    matrix: Matrix
    inventory: Inventory | None
    findings: list[Finding]
    coverage: list[Coverage]
    notices: list[str]
    known: int  # findings left out because the baseline has them
    filters: FlowFilter  # the narrowing asked for (none: an inactive filter)
    thresholds: Thresholds  # when flows roll up into one finding
    command: list[str] | None  # the command line that made the report, if one did
    created: str | None  # when (ISO 8601 UTC), likewise

    def verdict_counts(self) -> dict[str, int]: ...

    def severity_counts(self) -> dict[str, int]: ...


class FlowTraffic(TrafficSummary, Protocol):
    flows: Flows


class JudgedFlows(Result, Protocol):
    """A result that kept every flow and its verdict (the offline check): what
    the flow export needs."""

    traffic: FlowTraffic
    classified: Classified
