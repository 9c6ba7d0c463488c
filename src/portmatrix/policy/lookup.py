"""The compiled matrix: answers, for initiator roles -> responder roles on proto/port,
which rule allows it, which would with the roles swapped, and whether the port is in
the matrix for the responder at all.

Rules are indexed per protocol by disjoint port intervals (ranges such as
20123-32768 included), so a question touches only the rules on that port.
Answers are pure functions of (proto, port, initiator roles, responder roles)
and are memoized: a capture has few distinct such combinations.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from portmatrix.policy.matrix import ANY, PORTLESS, Matrix, MatrixException, Rule
from portmatrix.policy.roles import exception_label, real_roles

VERDICTS = ("allowed", "wrong-direction", "unexpected-source", "unexpected-port", "out-of-scope")
"""Every flow gets exactly one verdict (DESIGN.md, "Rule semantics"):

- allowed: a rule (or an active exception) allows the flow as initiated;
- wrong-direction: no rule allows it as initiated, one would with the roles swapped;
- unexpected-source: the responder's port is in the matrix for the responder's role,
  but not from the initiator's role;
- unexpected-port: nothing in the matrix for that protocol and port towards the
  responder's role;
- out-of-scope: neither endpoint holds a role.
"""


@dataclass(frozen=True)
class Decision:
    verdict: str
    rule: str = ""  # the allowing rule, or the one that would allow it swapped
    exception: str = ""  # the exception that allows it
    related: tuple[str, ...] = ()  # rules using this port for other sources
    expired: tuple[str, ...] = ()  # expired exceptions that would have allowed it
    covers: tuple[str, ...] = ()  # every rule that allows it (for coverage)


def _specificity(rule: Rule, index: int) -> tuple:
    span = sum(hi - lo + 1 for lo, hi in rule.ports) if rule.ports else len(rule.icmp_types) or 256
    return (span, rule.from_role == ANY, rule.to_role == ANY, index)


class RuleIndex:
    def __init__(self, matrix: Matrix, today: dt.date | None = None) -> None:
        self.matrix = matrix
        self.today = today or dt.date.today()
        self._by_proto: dict[str, tuple[list[int], list[tuple[Rule, ...]]]] = {}
        order = {r.id: i for i, r in enumerate(matrix.rules)}
        for proto in {r.proto for r in matrix.rules}:
            rules = [r for r in matrix.rules if r.proto == proto]
            self._by_proto[proto] = _port_intervals(rules, order)
        self.active = [e for e in matrix.exceptions if not e.expired(self.today)]
        self.expired = [e for e in matrix.exceptions if e.expired(self.today)]
        self.decide = lru_cache(maxsize=65536)(self._decide)
        self._bounds: dict[str, np.ndarray] = {}

    def buckets(self, proto: str, ports: np.ndarray) -> np.ndarray:
        """Per port, the first port of its interval: the ports between two bounds of
        any rule or exception of `proto` get the same decision, so a scan of 65,535
        ports is decided a few times, not 65,535 times."""
        bounds = self._bounds.get(proto)
        if bounds is None:
            points = {0, *self._by_proto.get(proto, ([], []))[0]}
            for exc in self.matrix.exceptions:
                if exc.proto == proto:
                    points.update(p for lo, hi in exc.ports for p in (lo, hi + 1))
            bounds = self._bounds[proto] = np.array(sorted(points), np.int64)
        return bounds[np.searchsorted(bounds, ports, side="right") - 1]

    def rules_on(self, proto: str, port: int) -> tuple[Rule, ...]:
        """Rules of `proto` whose ports include `port` (ICMP: whose types include it)."""
        starts, sets = self._by_proto.get(proto, ([], []))
        pos = bisect.bisect_right(starts, port) - 1
        return sets[pos] if pos >= 0 else ()

    def _decide(
        self, proto: str, port: int, init: frozenset[str], resp: frozenset[str]
    ) -> Decision:
        i_roles, r_roles = init | {ANY}, resp | {ANY}
        rules = self.rules_on(proto, port)
        allowing = tuple(
            r
            for r in rules
            if (r.from_role in i_roles and r.to_role in r_roles)
            or (r.initiator == "either" and r.from_role in r_roles and r.to_role in i_roles)
        )
        if allowing:
            return Decision("allowed", rule=allowing[0].id, covers=tuple(r.id for r in allowing))
        for exc in self.active:
            if _exception_matches(exc, proto, port, i_roles, r_roles):
                return Decision("allowed", exception=exc.id)
        expired = tuple(
            e.id for e in self.expired if _exception_matches(e, proto, port, i_roles, r_roles)
        )
        real_i, real_r = real_roles(init), real_roles(resp)
        if not real_i and not real_r:
            return Decision("out-of-scope", expired=expired)
        # A rule from `any` says nothing about direction: anyone may open it, so it
        # cannot show that this flow runs the wrong way.
        swapped = [
            r
            for r in rules
            if r.from_role != ANY and r.from_role in r_roles and r.to_role in i_roles
        ]
        if swapped:
            return Decision("wrong-direction", rule=swapped[0].id, expired=expired)
        towards = tuple(r.id for r in rules if r.to_role in real_r)
        if towards:
            return Decision("unexpected-source", related=towards, expired=expired)
        return Decision("unexpected-port", expired=expired)


def _port_intervals(rules: list[Rule], order: dict[str, int]):
    """Disjoint intervals over 0..65535 (ICMP: types 0..255), each with its rules,
    most specific first."""
    points = {0}
    spans = []
    for rule in rules:
        if rule.proto in PORTLESS:
            ranges = [(t, t) for t in rule.icmp_types] or [(0, 255)]
        else:
            ranges = list(rule.ports)
        for lo, hi in ranges:
            points.update((lo, hi + 1))
            spans.append((lo, hi, rule))
    starts = sorted(points)
    sets = []
    for start in starts:
        here = {rule.id: rule for lo, hi, rule in spans if lo <= start <= hi}
        sets.append(tuple(sorted(here.values(), key=lambda r: _specificity(r, order[r.id]))))
    return starts, sets


def _exception_matches(
    exc: MatrixException, proto: str, port: int, i_roles: frozenset[str], r_roles: frozenset[str]
) -> bool:
    if exc.proto != proto:
        return False
    if exc.ports and not any(lo <= port <= hi for lo, hi in exc.ports):
        return False

    def side_matches(values: tuple[str, ...], roles: frozenset[str], side: str) -> bool:
        return exception_label(exc.id, side) in roles or any(v in roles for v in values)

    return side_matches(exc.from_side, i_roles, "from") and side_matches(exc.to_side, r_roles, "to")
