"""Coverage: how each rule was exercised, and the findings for required rules that
were not (missing-required, or required-unreachable when only failed attempts
were seen) — computed here once, for the offline check and for live watching.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from portmatrix.addresses import to_text
from portmatrix.decode.keyhash import mix
from portmatrix.findings.model import SEVERITIES, Coverage, Finding, stable_id
from portmatrix.flows.model import Flows
from portmatrix.policy.classify import Classified
from portmatrix.policy.matrix import Matrix
from portmatrix.policy.roles import RoleMap
from portmatrix.records.unlogged import not_observable

NOT_EVALUATED = "not-evaluated"  # a required rule whose roles hold no address


class CoverageTally:
    """Per-rule counters over flows added in one step (a check) or many (a watch,
    tick after tick). Distinct endpoint pairs are kept as hashes, at most
    `pairs_kept` per rule when bounded (beyond that, pairs are only counted as
    seen before), so a watch that runs for weeks stays within its memory."""

    def __init__(self, matrix: Matrix, pairs_kept: int | None = None) -> None:
        self.matrix = matrix
        self.pairs_kept = pairs_kept
        self.rules = {rule.id: Coverage.of(rule) for rule in matrix.rules}
        self._pairs: dict[str, np.ndarray] = {}

    def add(self, flows: Flows, cls: Classified) -> None:
        covers: dict[str, list[int]] = {}
        for k, d in enumerate(cls.decisions):
            for rule_id in d.covers:
                covers.setdefault(rule_id, []).append(k)
        if not covers:
            return
        keys = mix(*(flows[c] for c in ("init_hi", "init_lo", "resp_hi", "resp_lo")))
        for rule_id, ks in covers.items():
            mine = np.isin(cls.decision, ks)
            cov = self.rules[rule_id]
            cov.flows += int(mine.sum())
            cov.established += int((mine & cls.answered).sum())
            cov.failed += int((mine & cls.failed).sum())
            self._add_pairs(cov, flows, np.flatnonzero(mine), keys)

    def pairs_of(self, rule_id: str) -> np.ndarray:
        """The distinct endpoint pairs of a rule, as hashes (a watch's state keeps them)."""
        return self._pairs.get(rule_id, np.zeros(0, np.uint64))

    def restore_pairs(self, rule_id: str, pairs: np.ndarray) -> None:
        self._pairs[rule_id] = np.unique(pairs)
        self.rules[rule_id].pairs = len(self._pairs[rule_id])

    def _add_pairs(self, cov: Coverage, flows: Flows, rows: np.ndarray, keys: np.ndarray) -> None:
        """Distinct pairs: one hash per flow is far cheaper than a row-wise unique."""
        uniq, first = np.unique(keys[rows], return_index=True)
        seen = self._pairs.get(cov.rule, np.zeros(0, np.uint64))
        new = ~np.isin(uniq, seen)
        if self.pairs_kept is not None:
            room = max(0, self.pairs_kept - len(seen))
            new &= np.cumsum(new) <= room
        self._pairs[cov.rule] = np.union1d(seen, uniq[new])
        cov.pairs = len(self._pairs[cov.rule])
        if len(cov.examples) < 3:
            at = rows[np.sort(first[new])][: 3 - len(cov.examples)]
            cols = [flows[c][at] for c in ("init_hi", "init_lo", "resp_hi", "resp_lo")]
            cov.examples += [
                f"{to_text((int(a) << 64) | int(b))} → {to_text((int(c) << 64) | int(e))}"
                for a, b, c, e in zip(*(c.tolist() for c in cols), strict=True)
            ]

    def result(
        self,
        weakened: bool,
        unheld: set[str] | frozenset[str] = frozenset(),
        judge: bool = True,
    ) -> tuple[list[Coverage], list[Finding]]:
        """Coverage of every rule so far, and the findings for required rules not
        exercised (weaker when the capture is incomplete). A required rule whose
        roles hold no address (`unheld`) is not evaluated: nothing could match it;
        nor is any when `judge` is false (no traffic at all, or a time window that
        holds none of it: nothing was there to see)."""
        out, findings = [], []
        for rule in self.matrix.rules:
            cov = replace(self.rules[rule.id], examples=list(self.rules[rule.id].examples))
            if rule.required and (not judge or {rule.from_role, rule.to_role} & set(unheld)):
                cov.status = NOT_EVALUATED
            elif rule.required:
                cov.status = required_status(cov)
                if cov.status != "ok":
                    findings.append(coverage_finding(rule, cov, weakened))
            out.append(cov)
        return out, findings


def judged_coverage(
    tally: CoverageTally, role_map: RoleMap, weakened: bool, judge: bool = True, captures=()
) -> tuple[list[Coverage], list[Finding]]:
    """The coverage a check reports, and its findings: the one place that decides
    each required rule's status — not evaluated when its roles hold no address or
    nothing was there to see (`judge` false), not observable when the inputs
    (`captures`, a list of CaptureInfo) are flow records that never log it. A
    --what-if matrix's coverage comes from here too, so both sides compare alike."""
    unheld = unheld_roles(tally.matrix, role_map)
    cov, findings = tally.result(weakened, unheld, judge=judge)
    return not_observable(cov, findings, tally.matrix, role_map, captures)


def unheld_roles(matrix: Matrix, role_map: RoleMap) -> set[str]:
    """Roles the rules name that no address holds (`any` is every address)."""
    held = set().union(*role_map.index.sets)
    used = {r.from_role for r in matrix.rules} | {r.to_role for r in matrix.rules}
    return {r for r in used if r in matrix.roles and r not in held}


def required_status(cov: Coverage) -> str:
    """ok with an established flow; required-unreachable with failed attempts only;
    missing-required with neither."""
    if cov.established:
        return "ok"
    return "required-unreachable" if cov.failed else "missing-required"


def coverage_finding(rule, cov: Coverage, weakened: bool) -> Finding:
    what = f"{rule.proto}/{rule.ports_text}" if rule.ports else rule.proto
    if cov.status == "required-unreachable":
        message = (
            f"required rule {rule.id} ({rule.service}, {rule.from_role} → "
            f"{rule.to_role} {what}) had {cov.failed} attempt(s), none answered: "
            "something blocks a port the matrix needs"
        )
        action = (
            f"Open {what} from {rule.from_role} to {rule.to_role} on the firewalls "
            "between them: every attempt failed."
        )
    else:
        message = (
            f"required rule {rule.id} ({rule.service}, {rule.from_role} → "
            f"{rule.to_role} {what}) has no established flow in the capture"
        )
        action = (
            f"Check that {rule.service} runs on {rule.to_role} and that the capture sees "
            f"{rule.from_role} → {rule.to_role} traffic."
        )
    if weakened:
        message += " — but the capture is incomplete (see notices), so this may be missed "
        message += "traffic rather than a missing service"
    return Finding(
        id=stable_id(cov.status, rule.id),
        severity="warning" if weakened else "error",
        kind="coverage",
        verdict=cov.status,
        message=message,
        action=action,
        proto=rule.proto,
        port=rule.ports[0][0]
        if len(rule.ports) == 1 and rule.ports[0][0] == rule.ports[0][1]
        else None,
        ports=rule.ports_text or None,
        service=rule.service,
        initiator_roles=[rule.from_role],
        responder_roles=[rule.to_role],
        rule=rule.id,
        flows=cov.flows,
        outcomes={"failed": cov.failed} if cov.failed else {},
    )


def link_coverage(findings: list[Finding]) -> None:
    """A coverage finding names the flow findings it rests on (the failed attempts of
    its rule); they become part of it, so each problem is counted once, and it is
    at least as severe as they are."""
    by_rule: dict[str, list[Finding]] = {}
    for f in findings:
        if f.kind == "flow" and f.verdict == "allowed" and f.rule:
            by_rule.setdefault(f.rule, []).append(f)
    for c in findings:
        if c.kind != "coverage":
            continue
        parts = by_rule.get(c.rule, [])
        c.rests_on = sorted(p.id for p in parts)
        for p in parts:
            p.part_of = c.id
            if SEVERITIES.index(p.severity) > SEVERITIES.index(c.severity):
                c.severity = p.severity
