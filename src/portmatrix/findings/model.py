"""What a check reports: findings and the coverage of rules, and their severities.

A finding is a problem a person would fix (docs/findings.md): flows grouped by
verdict, initiator role (or host), responder role, protocol and service; one
host scanning many ports or hosts; many sources on one service; a required
rule not exercised; an expired exception. Coverage says how each rule was
exercised. Ids are stable (`stable_id`), so runs can be compared and a
baseline kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields

import numpy as np

SEVERITIES = ("info", "warning", "error")
INFO, WARNING, ERROR = range(3)
EXAMPLE_FRAMES = 5
TOP_PAIRS = 5  # host pairs listed per finding, the busiest first
KINDS = ("flow", "scan", "flood", "coverage", "matrix")
"""flow: flows of one problem (verdict, roles or host, service); scan: one initiator
touching many ports or hosts; flood: many sources on one service, mostly
unanswered or refused; coverage: a required rule not exercised; matrix: an
exception that expired."""


@dataclass(frozen=True)
class Thresholds:
    """When flows roll up into one finding (docs/findings.md, "Scans and floods").

    scan_ports: an initiator whose forbidden attempts failed on this many distinct
    ports of one host is scanning (Zeek's scan policy uses 15); scan_hosts: ... on
    this many hosts on one port (Zeek: 25); many_sources: this many initiators
    with no role on one service are one finding, not one per source; the same
    number of distinct forbidden ports between the same roles is one finding too.
    """

    scan_ports: int = 15
    scan_hosts: int = 25
    many_sources: int = 10

    def describe(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class Finding:
    """One problem to report. Fields that do not apply to a kind are None or empty
    (see portmatrix/report/schema.json for every field of the JSON report)."""

    id: str
    severity: str  # info | warning | error
    kind: str  # KINDS
    verdict: str  # a flow verdict, or missing-required / required-unreachable /
    #              expired-exception
    message: str  # what happened, and which rule is involved
    action: str = ""  # one line: what to do
    suggestion: str | None = None  # YAML (a rule or an exception) to paste into a site file
    proto: str | None = None
    port: int | None = None  # the one port (ICMP: type) when the finding has one
    ports: str | None = None  # every port, as ranges ("1-1024, 8443")
    service: str | None = None  # the rule's service, or what was reached (tcp/8443)
    initiator: str | None = None  # the host, when one host opened every flow
    initiator_roles: list[str] = field(default_factory=list)
    initiators: int = 0  # distinct initiating hosts
    responder: str | None = None  # the host, when one host answered every flow
    responder_roles: list[str] = field(default_factory=list)
    responders: int = 0
    rule: str | None = None  # the rule involved: allowing, swapped, or the required one;
    #                         "exception:ID" for traffic an exception allows
    related_rules: list[str] = field(default_factory=list)
    flows: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    attempts: int | None = None  # allowed flows of the rule in all (intermittent failures)
    packets: int = 0
    bytes: int = 0
    first_seen: str | None = None
    last_seen: str | None = None
    pairs: list[dict] = field(default_factory=list)  # top host pairs: initiator, responder,
    #                                                 flows
    open_ports: str | None = None  # a scan: forbidden ports that answered
    frames: list[str] = field(default_factory=list)  # example frames ("file:frame")
    community_ids: list[str] = field(default_factory=list)  # of the example flows
    filter: str | None = None  # a Wireshark display filter selecting the flows
    heuristic: bool = False  # rests only on a guessed initiator
    expired_exceptions: list[str] = field(default_factory=list)
    rests_on: list[str] = field(default_factory=list)  # coverage: the flow findings behind it
    part_of: str | None = None  # a flow finding a coverage finding rests on: its id
    apps: dict[str, int] = field(default_factory=dict)  # application label -> flows of
    #  the finding labelled with it (portmatrix.apps; {} when none was labelled)
    app_details: list[str] = field(default_factory=list)  # what the labelled flows
    #  showed: "tls sni=admin.example.com alpn=h2", "ssh server=OpenSSH_9.2p1", ...
    # Not reported: the finding's flows (indices into the flows it was found in), and
    # the problem it was worded from (watch merges problems found tick after tick).
    members: np.ndarray | None = field(default=None, compare=False, repr=False)
    problem: object = field(default=None, compare=False, repr=False)
    fix: tuple[str, dict] | None = field(default=None, compare=False, repr=False)  # the
    # suggestion as data: ("rules" | "exceptions", the entry), for a suggestions file

    def to_dict(self) -> dict:
        out = {}
        for f in fields(self):
            if f.name in INTERNAL:
                continue
            value = getattr(self, f.name)
            if isinstance(value, list):
                value = [dict(v) if isinstance(v, dict) else v for v in value]
            elif isinstance(value, dict):
                value = dict(value)
            out[f.name] = value
        return out


INTERNAL = ("members", "problem", "fix")


@dataclass
class Coverage:
    """How a rule was exercised by the traffic."""

    rule: str
    service: str
    proto: str
    ports: str
    from_role: str
    to_role: str
    required: bool
    flows: int = 0
    established: int = 0
    failed: int = 0
    pairs: int = 0  # distinct initiator/responder pairs
    examples: list[str] = field(default_factory=list)  # a few "a -> b" pairs
    status: str | None = None  # ok | missing-required | required-unreachable |
    #     not-evaluated | not-observable | None (a rule that is not required);
    #     decided in findings.coverage.judged_coverage

    @classmethod
    def of(cls, rule) -> Coverage:
        """A rule's coverage before any flow."""
        return cls(
            rule=rule.id,
            service=rule.service,
            proto=rule.proto,
            ports=rule.ports_text or "any",
            from_role=rule.from_role,
            to_role=rule.to_role,
            required=rule.required,
        )

    def to_dict(self) -> dict:
        return asdict(self)


class JudgedResult:
    """What every result with `findings` answers: counts by severity, the exit status."""

    findings: list[Finding]

    def severity_counts(self) -> dict[str, int]:
        """Each problem once: a flow finding that a coverage finding rests on is part
        of it, not counted again."""
        counts = dict.fromkeys(reversed(SEVERITIES), 0)
        for f in self.findings:
            if f.part_of is None:
                counts[f.severity] += 1
        return counts

    def exit_code(self, fail_on: str) -> int:
        """1 when a finding is at least as severe as `fail_on` (or never), else 0."""
        if fail_on == "never":
            return 0
        floor = SEVERITIES.index(fail_on)
        return int(any(SEVERITIES.index(f.severity) >= floor for f in self.findings))


def stable_id(*parts: object) -> str:
    digest = hashlib.sha1("|".join(str(p) for p in parts).encode()).hexdigest()
    return f"PM-{digest[:10]}"


KIND_ORDER = {k: i for i, k in enumerate(("scan", "flood", "flow", "coverage", "matrix"))}


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Errors first, then the biggest (flows), then stable fields; a flow finding
    that a coverage finding rests on right after it."""
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    ranked = sorted(
        (f for f in findings if f.part_of is None),
        key=lambda f: (
            order[f.severity],
            KIND_ORDER[f.kind] if f.kind in ("coverage", "matrix") else 0,
            -f.flows,
            f.verdict,
            f.id,
        ),
    )
    parts: dict[str, list[Finding]] = {}
    for f in findings:
        if f.part_of is not None:
            parts.setdefault(f.part_of, []).append(f)
    out = []
    for f in ranked:
        out.append(f)
        out += sorted(parts.pop(f.id, []), key=lambda g: (-g.flows, g.id))
    for rest in parts.values():  # their coverage finding was filtered away
        out += rest
    return out
