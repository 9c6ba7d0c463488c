"""Required services judged while watch runs, over a sliding window.

A port matrix's most important live alarm: a required service that stops.
Every flow judged (live or over) moves, for each required rule it exercises,
the time of the newest established packet and of the newest failed attempt.
Judged every `--report-every` as of `now`: a rule with no established flow in
the last `window` is `missing-required` (or `required-unreachable` when it had
failed attempts in the window: something blocks it), raised once, with when it
was last established; when an established flow shows up again the alarm ends
with a `recovered` event. Nothing is raised before watch has seen a whole
window (at the start, after a restart), nor for a window without any traffic
(the capture saw nothing: nothing to conclude), nor for rules whose roles hold
no address.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from portmatrix.findings.coverage import coverage_finding
from portmatrix.findings.model import Coverage, Finding, stable_id
from portmatrix.flows.model import Flows
from portmatrix.policy.classify import Classified
from portmatrix.policy.matrix import Matrix, Rule
from portmatrix.textforms import iso
from portmatrix.times import span_text

MISSING, UNREACHABLE = "missing-required", "required-unreachable"
STRONGER = {None: 0, MISSING: 1, UNREACHABLE: 2}


@dataclass
class RuleState:
    """One required rule, as watched."""

    last_ok: int | None = None  # ns: newest packet of an established flow exercising it
    last_failed: int | None = None  # ns: newest failed attempt
    failed_since_ok: int = 0  # failed attempts since the last established one
    alarm: str | None = None  # MISSING | UNREACHABLE while raised
    alarm_since: int | None = None  # ns: when it was raised
    alarm_last_ok: int | None = None  # ns: last established before the alarm

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Change:
    """An alarm raised (`raised`) or ended (`recovered`)."""

    kind: str  # raised | recovered
    finding: Finding


class CoverageWindow:
    def __init__(self, matrix: Matrix, window_ns: int) -> None:
        self.window = window_ns
        self.rules: dict[str, Rule] = {r.id: r for r in matrix.rules if r.required}
        self.state: dict[str, RuleState] = {rid: RuleState() for rid in self.rules}
        self.started: int | None = None  # ns: when watching began (this run)
        self.first_packet: int | None = None  # ns: oldest packet judged (this run)
        self.last_packet: int | None = None  # ns: newest packet of any kind

    def add(self, flows: Flows, cls: Classified, settled: bool) -> None:
        """Flows just judged. `settled`: they are over, so a failure is final (a
        live flow without an answer may still get one)."""
        if not len(flows):
            return
        last = flows["last_ts"]
        self.last_packet = max(self.last_packet or 0, int(last.max()))
        first = int(flows["first_ts"].min())
        self.first_packet = first if self.first_packet is None else min(self.first_packet, first)
        for k, d in enumerate(cls.decisions):
            required = [r for r in d.covers if r in self.state]
            if not required:
                continue
            mine = cls.decision == k
            ok = mine & cls.answered
            failed = mine & cls.failed if settled else np.zeros(len(mine), bool)
            for rid in required:
                s = self.state[rid]
                if ok.any():
                    newest = int(last[ok].max())
                    if s.last_ok is None or newest > s.last_ok:
                        s.last_ok = newest
                        s.failed_since_ok = 0
                if failed.any():
                    s.last_failed = max(s.last_failed or 0, int(last[failed].max()))
                    s.failed_since_ok += int(failed.sum())

    def judge(
        self, now: int, weakened: bool = False, unheld: frozenset[str] = frozenset()
    ) -> list[Change]:
        """Alarms raised and ended as of `now` (ns). The watch's clock is the
        packets' (see watch.loop): watching begins with the first packet judged,
        not before — a replayed or late capture is not a window without traffic."""
        if self.started is None:
            if self.first_packet is None:
                return []
            self.started = min(now, self.first_packet)
        since = now - self.window
        watched_long_enough = now - self.started >= self.window
        traffic = self.last_packet is not None and self.last_packet >= since
        out = []
        for rid, rule in self.rules.items():
            s = self.state[rid]
            if s.last_ok is not None and s.last_ok >= since:
                if s.alarm:
                    out.append(Change("recovered", self._recovered(rule, s)))
                    s.alarm, s.alarm_since, s.alarm_last_ok = None, None, None
                continue
            if not (watched_long_enough and traffic) or {rule.from_role, rule.to_role} & unheld:
                continue
            status = (
                UNREACHABLE if s.last_failed is not None and s.last_failed >= since else MISSING
            )
            if STRONGER[status] <= STRONGER[s.alarm]:
                continue  # raised already (an unreachable one stays until it recovers)
            s.alarm, s.alarm_since, s.alarm_last_ok = status, now, s.last_ok
            out.append(Change("raised", self.alarm_finding(rid, weakened)))
        return out

    def alarm_finding(self, rid: str, weakened: bool = False) -> Finding:
        """The finding of a raised alarm: as `check` words it, with when the
        service was last seen and over which window."""
        rule, s = self.rules[rid], self.state[rid]
        cov = Coverage.of(rule)
        cov.status, cov.failed = s.alarm, s.failed_since_ok
        f = coverage_finding(rule, cov, weakened)
        minutes = span_text(self.window / 1e9)
        seen = (
            f"last established {_when(s.last_ok)}"
            if s.last_ok is not None
            else "never established since watching began"
        )
        what = f"{rule.proto}/{rule.ports_text}" if rule.ports else rule.proto
        head = f"required rule {rule.id} ({rule.service}, {rule.from_role} → {rule.to_role} {what})"
        if s.alarm == UNREACHABLE:
            f.message = (
                f"{head} had {s.failed_since_ok} failed attempt(s) and no established flow "
                f"in the last {minutes} ({seen}): something blocks a port the matrix needs"
            )
        else:
            f.message = f"{head} has no established flow in the last {minutes} ({seen})"
        if weakened:
            f.message += " — but the capture dropped packets, so this may be missed traffic"
        f.last_seen = _when(s.last_ok)
        return f

    def _recovered(self, rule: Rule, s: RuleState) -> Finding:
        f = self.alarm_finding(rule.id)
        before = s.alarm_last_ok if s.alarm_last_ok is not None else self.started
        down = (
            f"after {span_text((s.last_ok - before) / 1e9)} without" if before is not None else ""
        )
        f.severity = "info"
        f.message = (
            f"required rule {rule.id} ({rule.service}) is established again at "
            f"{_when(s.last_ok)}, {down}".rstrip(", ")
        )
        f.action = ""
        f.outcomes = {}
        return f

    def active(self) -> dict[str, str]:
        """Finding id -> rule id of the alarms raised now."""
        return {stable_id(s.alarm, rid): rid for rid, s in self.state.items() if s.alarm}

    def up(self) -> dict[str, int]:
        """Per required rule judged so far: 1 established in the window, 0 raised."""
        return {rid: 0 if s.alarm else 1 for rid, s in self.state.items()}

    def to_dict(self) -> dict:
        return {rid: s.to_dict() for rid, s in self.state.items()}

    def restore(self, saved: dict) -> None:
        """Rule states saved by an earlier run (rules no longer in the matrix are
        dropped; new ones start afresh)."""
        for rid, fields in saved.items():
            if rid in self.state:
                self.state[rid] = RuleState(**fields)


def _when(ns: int | None) -> str | None:
    return None if ns is None else str(iso(np.array([ns]))[0])
