"""What a check reports: findings and the coverage of rules, and their severities.

A finding is one thing to report (a problem between roles and a service, a
required rule not exercised, an expired exception); coverage says how each
rule was exercised. Ids are stable: built from verdict, roles, addresses,
protocol and port (never the client's ephemeral port), so runs can be
compared and a baseline kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np

SEVERITIES = ("info", "warning", "error")
INFO, WARNING, ERROR = range(3)
EXAMPLE_FRAMES = 5


@dataclass
class Finding:
    """One thing to report. Fields that do not apply to a kind are empty."""

    id: str
    severity: str  # info | warning | error
    kind: str  # flow | coverage | matrix
    verdict: str  # a flow verdict, or missing-required / required-unreachable /
    #              expired-exception
    message: str  # one sentence: what is wrong and which rule is involved
    proto: str = ""
    port: int | None = None
    initiator: str = ""
    initiator_roles: list[str] = field(default_factory=list)
    responder: str = ""
    responder_roles: list[str] = field(default_factory=list)
    rule: str = ""  # the rule involved: allowing, swapped, or the required one;
    #               "exception:ID" for traffic an exception allows
    related_rules: list[str] = field(default_factory=list)
    flows: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    packets: int = 0
    bytes: int = 0
    first_seen: str | None = None
    last_seen: str | None = None
    frames: list[str] = field(default_factory=list)  # example frames ("file:frame")
    filter: str = ""  # a Wireshark display filter that isolates the flows
    heuristic: bool = False  # rests only on a guessed initiator
    expired_exceptions: list[str] = field(default_factory=list)
    # The finding's flows, as indices into the flows it was found in (not reported).
    members: np.ndarray | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        del out["members"]
        for key in (
            "initiator_roles",
            "responder_roles",
            "related_rules",
            "frames",
            "expired_exceptions",
        ):
            out[key] = list(out[key])
        out["outcomes"] = dict(out["outcomes"])
        return out


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
    status: str = ""  # ok | missing-required | required-unreachable | not-evaluated | ""
    #                 ("" for a rule that is not required)

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
        counts = dict.fromkeys(reversed(SEVERITIES), 0)
        for f in self.findings:
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


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Errors first; flows before coverage and matrix findings; then stable fields."""
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    return sorted(
        findings,
        key=lambda f: (
            order[f.severity],
            f.kind != "flow",
            f.verdict,
            f.initiator,
            f.responder,
            f.port or 0,
            f.id,
        ),
    )
