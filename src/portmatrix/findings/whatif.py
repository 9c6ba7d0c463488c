"""What would change if another matrix (a draft) were enforced: every flow judged
under both, the flows whose verdict would change grouped as findings are (by
change, roles, protocol, port and the rules involved), and the coverage of
required rules compared.

Changes and their severities (`--fail-on` applies to them):

- would-break: allowed today, not under the draft, and answered — what enforcing
  the draft would break (Cisco's "escaped" traffic): error;
- would-forbid: allowed today, not under the draft, but refused or unanswered
  anyway — nothing working is lost: info;
- would-allow: flagged today (or out of scope), allowed under the draft: warning
  when the responder answered (the draft legitimises traffic that got through),
  else info;
- coverage: a required rule whose status would differ, when either status is a
  problem: warning when the draft's is (it would be reported), else info.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from portmatrix.findings.columns import dense, first_k
from portmatrix.findings.model import SEVERITIES, Coverage
from portmatrix.flows.model import Flows
from portmatrix.policy.classify import ALLOWED, OUT_OF_SCOPE, Classified, matrix_port
from portmatrix.policy.lookup import VERDICTS, Decision
from portmatrix.policy.matrix import Matrix
from portmatrix.policy.roles import RoleMap, exception_rule, real_roles
from portmatrix.textforms import address_texts, iso, proto_name

CHANGES = ("would-break", "would-forbid", "would-allow")
BREAK, FORBID, ALLOW = range(3)
EXAMPLES = 3  # host pairs shown per change
PROBLEMS = ("missing-required", "required-unreachable")


@dataclass
class Judged:
    """Flows judged under one matrix: what a what-if compares."""

    matrix: Matrix
    role_map: RoleMap
    classified: Classified
    coverage: list[Coverage]  # as check reports it (findings.coverage.judged_coverage)


@dataclass
class Change:
    """Flows whose verdict would change, for one role pair, service and pair of rules."""

    change: str  # an entry of CHANGES
    severity: str
    proto: str
    port: int
    initiator_roles: list[str]  # under the current matrix
    responder_roles: list[str]
    now: str  # verdict today
    now_rule: str | None  # the rule (or exception:ID) that allows it today, or related ones
    draft: str  # verdict under the draft
    draft_rule: str | None
    flows: int
    answered: int
    examples: list[str]  # "a → b"
    first_seen: str
    last_seen: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class CoverageChange:
    rule: str
    service: str
    what: str  # "nodes → nodes tcp/2100"
    now: str  # status today: ok, missing-required, ..., "not required" or "absent"
    draft: str
    severity: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class WhatIf:
    files: list[str]
    matrix: str
    verdicts: dict[str, int]  # under the draft
    changes: list[Change] = field(default_factory=list)
    coverage: list[CoverageChange] = field(default_factory=list)

    def severity_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(reversed(SEVERITIES), 0)
        for item in [*self.changes, *self.coverage]:
            counts[item.severity] += 1
        return counts

    def exit_code(self, fail_on: str) -> int:
        if fail_on == "never":
            return 0
        floor = SEVERITIES.index(fail_on)
        return int(
            any(SEVERITIES.index(s) >= floor and n for s, n in self.severity_counts().items())
        )


def what_if(flows: Flows, now: Judged, draft: Judged) -> WhatIf:
    """The changes between judging `flows` as `now` does and as `draft` does."""
    return WhatIf(
        files=list(draft.matrix.files),
        matrix=draft.matrix.name,
        verdicts=draft.classified.counts(),
        changes=_changes(flows, now, draft),
        coverage=_coverage(now, draft),
    )


def _rule_of(d: Decision) -> str | None:
    if d.exception:
        return exception_rule(d.exception)
    return d.rule or ", ".join(d.related) or None


def _changes(flows: Flows, now: Judged, draft: Judged) -> list[Change]:
    a, b = now.classified, draft.classified
    allowed_now, allowed_draft = a.verdict == ALLOWED, b.verdict == ALLOWED
    kind = np.full(len(flows), -1, np.int64)
    kind[allowed_now & ~allowed_draft & a.answered] = BREAK
    kind[allowed_now & ~allowed_draft & ~a.answered] = FORBID
    kind[~allowed_now & allowed_draft] = ALLOW
    chosen = np.flatnonzero(kind >= 0)
    if not len(chosen):
        return []
    port = matrix_port(flows)
    cols = [
        kind,
        a.decision.astype(np.int64),
        b.decision.astype(np.int64),
        a.init_roles.astype(np.int64),
        a.resp_roles.astype(np.int64),
        flows["proto"].astype(np.int64),
        port.astype(np.int64),
    ]
    cols = [c[chosen] for c in cols]
    ids, groups, first = dense(*cols)
    rank = np.empty(groups, np.int64)  # groups in the order of their columns, as sorted
    rank[np.lexsort([c[first] for c in cols[::-1]])] = np.arange(groups)
    inverse = rank[ids]
    order = np.argsort(inverse, kind="stable")
    sub = chosen[order]
    sizes = np.bincount(inverse)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    answered = np.add.reduceat(a.answered[sub].astype(np.int64), starts)
    flagged_now = (a.verdict[sub] != ALLOWED) & (a.verdict[sub] != OUT_OF_SCOPE)
    got_through = np.logical_or.reduceat(flagged_now & a.answered[sub], starts)
    first_seen = iso(np.minimum.reduceat(flows["first_ts"][sub], starts))
    last_seen = iso(np.maximum.reduceat(flows["last_ts"][sub], starts))
    examples = _examples(flows, sub, inverse[order], groups)
    out = []
    for j, s in enumerate(starts.tolist()):
        i = int(sub[s])
        k = int(kind[i])
        severity = {BREAK: "error", FORBID: "info", ALLOW: "info"}[k]
        if k == ALLOW and got_through[j]:
            severity = "warning"
        out.append(
            Change(
                change=CHANGES[k],
                severity=severity,
                proto=proto_name(int(flows["proto"][i])),
                port=int(port[i]),
                initiator_roles=sorted(real_roles(now.role_map.roles_of(int(a.init_roles[i])))),
                responder_roles=sorted(real_roles(now.role_map.roles_of(int(a.resp_roles[i])))),
                now=VERDICTS[int(a.verdict[i])],
                now_rule=_rule_of(a.decisions[int(a.decision[i])]),
                draft=VERDICTS[int(b.verdict[i])],
                draft_rule=_rule_of(b.decisions[int(b.decision[i])]),
                flows=int(sizes[j]),
                answered=int(answered[j]),
                examples=examples[j],
                first_seen=str(first_seen[j]),
                last_seen=str(last_seen[j]),
            )
        )
    rank = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    out.sort(key=lambda c: (rank[c.severity], CHANGES.index(c.change), -c.flows, c.proto, c.port))
    return out


def _examples(flows: Flows, rows: np.ndarray, group: np.ndarray, groups: int) -> list[list[str]]:
    """The first EXAMPLES distinct host pairs of each group ("a → b"), for `rows`
    sorted by `group`: only the pairs shown are written out as text."""
    sides = [flows[c][rows] for c in ("init_hi", "init_lo", "resp_hi", "resp_lo")]
    pair, _, _ = dense(group, *sides)
    _, at = np.unique(pair, return_index=True)  # each pair's first row
    at = np.sort(at)
    at = at[first_k(group[at], EXAMPLES)]
    init = address_texts(sides[0][at], sides[1][at])
    resp = address_texts(sides[2][at], sides[3][at])
    out: list[list[str]] = [[] for _ in range(groups)]
    for g, i, r in zip(group[at].tolist(), init, resp, strict=True):
        out[g].append(f"{i} → {r}")
    return out


def _coverage(now: Judged, draft: Judged) -> list[CoverageChange]:
    """Required rules whose status (as check gives it, under each matrix) differs,
    where either status is a problem, or the draft no longer requires a rule that
    is checked and ok today (it would stop being checked: a draft learned from
    traffic requires only what it saw)."""
    before = {c.rule: c for c in now.coverage if c.required}
    after = {c.rule: c for c in draft.coverage if c.required}
    out = []
    for rule_id in sorted(set(before) | set(after)):
        old = before[rule_id].status if rule_id in before else _absent(now.matrix, rule_id)
        new = after[rule_id].status if rule_id in after else _absent(draft.matrix, rule_id)
        dropped = old == "ok" and rule_id not in after
        if old == new or not ({old, new} & set(PROBLEMS) or dropped):
            continue
        c = after.get(rule_id) or before[rule_id]
        what = f"{c.from_role} → {c.to_role} {c.proto}" + (
            f"/{c.ports}" if c.ports != "any" else ""
        )
        severity = "warning" if new in PROBLEMS else "info"
        out.append(CoverageChange(rule_id, c.service, what, old, new, severity))
    return out


def _absent(matrix: Matrix, rule_id: str) -> str:
    return "not required" if any(r.id == rule_id for r in matrix.rules) else "absent"
