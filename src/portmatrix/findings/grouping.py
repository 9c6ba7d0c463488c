"""Flow findings: the flows a person would look at, grouped into problems
(docs/findings.md).

Which flows: forbidden ones (wrong-direction, unexpected-source,
unexpected-port) and allowed ones that failed. Severity per flow, on both
axes of DESIGN.md:

- forbidden and answered by the responder: error — traffic the matrix forbids
  got through; forbidden and refused or unanswered: info — blocked, as the
  matrix wants (still listed); forbidden UDP with no reply at all: warning (for
  UDP, silence does not show it was blocked);
- allowed but refused, or a TCP/ICMP attempt left unanswered: error when the
  rule is required, warning otherwise; a warning too ("intermittent") when the
  same rule is otherwise established;
- a verdict that rests only on a guessed initiator (mid-stream) is at most a
  warning, and says so.

Problems: flows that share verdict, initiator role set (the host when it has
no role), responder role set (or "no role"), protocol and service (the rule
for allowed and wrong-direction flows, the port otherwise). Then the roll-ups
(`Thresholds`): an initiator whose forbidden attempts failed on many ports or
hosts is one scan finding; many initiators with no role on one service are one
finding (a flood when they were mostly not answered); many forbidden ports
between the same two sides are one finding with the ports as ranges.

`Grouper` keeps the roll-up tallies, so `watch` feeding it tick after tick
decides as `check` does on the whole capture.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from portmatrix.addresses import to_text
from portmatrix.decode.keyhash import mix
from portmatrix.findings.aggregate import aggregate
from portmatrix.findings.columns import dense, unique
from portmatrix.findings.model import (
    ERROR,
    INFO,
    WARNING,
    Coverage,
    Finding,
    Thresholds,
    stable_id,
)
from portmatrix.findings.scans import ScanTally
from portmatrix.findings.wording import Problem, finding_of
from portmatrix.flows.model import OUTCOMES, UNANSWERED, Flows
from portmatrix.policy.classify import ALLOWED, OUT_OF_SCOPE, Classified, matrix_port
from portmatrix.policy.lookup import VERDICTS, RuleIndex
from portmatrix.policy.roles import RoleMap, exception_rule, real_roles

FAILED = tuple(OUTCOMES.index(o) for o in ("refused", "unanswered", "blocked") if o in OUTCOMES)
MANY = -1  # initiator key of "many sources with no role"; service key of "many ports"


class DistinctTally:
    """Per roll-up key, the distinct values seen, until there are `threshold` of
    them (then only that the key reached it): bounded by keys x threshold."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.seen: dict[tuple, set[int]] = {}
        self.reached: set[tuple] = set()

    def reach(self, key: tuple) -> None:
        self.reached.add(key)
        self.seen.pop(key, None)

    def add(self, key: tuple, values: list[int]) -> bool:
        if key not in self.reached:
            seen = self.seen.setdefault(key, set())
            seen.update(values)
            if len(seen) >= self.threshold:
                self.reached.add(key)
                del self.seen[key]
        return key in self.reached


class Grouper:
    """Flow findings of flows added once (check) or tick after tick (watch)."""

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self.thresholds = thresholds or Thresholds()
        self.scans = ScanTally(self.thresholds)
        self.sources = DistinctTally(self.thresholds.many_sources)
        self.ports = DistinctTally(self.thresholds.scan_ports)

    def findings(
        self,
        flows: Flows,
        cls: Classified,
        role_map: RoleMap,
        index: RuleIndex,
        coverage: dict[str, Coverage],
        several_files: bool = False,
        today: dt.date | None = None,
    ) -> list[Finding]:
        """The findings of these flows (the tallies remember earlier calls).

        Longer than most functions here, on purpose: one vectorized pass — pick the
        flows to report, tally scans, roll up many sources and many ports, group,
        aggregate — whose steps share a dozen columns of the picked rows; split,
        they would pass them all around. The English is `wording.finding_of`.
        """
        verdict = cls.verdict.astype(np.int64)
        forbidden = (verdict != ALLOWED) & (verdict != OUT_OF_SCOPE)
        rows = np.flatnonzero(forbidden | ((verdict == ALLOWED) & cls.failed))
        if not len(rows):
            return []
        f = flows
        outcome = f["outcome"]
        silent = (outcome == UNANSWERED) & ~cls.failed
        sev = _severities(cls, index, forbidden, silent)[rows]
        ihi, ilo = f["init_hi"][rows], f["init_lo"][rows]
        proto = f["proto"][rows].astype(np.int64)
        port_all = matrix_port(f).astype(np.int64)
        port = port_all[rows]
        v = verdict[rows]
        forb = forbidden[rows]
        tried = np.isin(outcome[rows], FAILED)
        host = mix(ihi, ilo)  # an initiator's identity
        # Scans: failed forbidden attempts, counted across calls.
        c = forb & tried
        self.scans.add(
            ihi[c], ilo[c], f["resp_hi"][rows][c], f["resp_lo"][rows][c], (proto[c] << 16) | port[c]
        )
        scan = self.scans.is_scanner(host)
        roles = _RoleKeys(role_map)
        i_real = roles.key[cls.init_roles[rows]]
        r_real = roles.key[cls.resp_roles[rows]]
        services = _Services(cls, index)
        code = services.code[cls.decision[rows]]
        svc = np.where(code >= 0, code, port)
        # The initiator side of a problem: its roles, or (-2) the host itself.
        ikey = np.where(i_real >= 0, i_real, -2)
        who = np.where(i_real >= 0, np.uint64(0), host)
        # Many sources with no role on one service: one finding.
        many = self._reached(
            self.sources,
            ~scan & (i_real < 0),
            (v, r_real, proto, svc),
            host,
            lambda r: (
                VERDICTS[v[r]],
                roles.text[r_real[r]],
                int(proto[r]),
                services.text(int(svc[r])),
            ),
        )
        ikey = np.where(many, MANY, ikey)
        who = np.where(many, np.uint64(0), who)

        def side(r: int) -> str:
            if ikey[r] == MANY:
                return "*"
            if i_real[r] >= 0:
                return roles.text[i_real[r]]
            return to_text((int(ihi[r]) << 64) | int(ilo[r]))

        # Many forbidden ports between the same two sides: one finding.
        wide = self._reached(
            self.ports,
            ~scan & forb & (code < 0),
            (v, ikey, who, r_real, proto),
            port.astype(np.uint64),
            lambda r: (VERDICTS[v[r]], side(r), roles.text[r_real[r]], int(proto[r])),
        )
        svc = np.where(wide, MANY, svc)
        zero = np.zeros(len(rows), np.int64)
        gid, groups, _ = dense(
            scan.astype(np.int64),
            np.where(scan, zero, v),
            np.where(scan, -3, ikey),
            np.where(scan, host, who),
            np.where(scan, zero, r_real),
            np.where(scan, zero, proto),
            np.where(scan, zero, svc),
        )
        answered = cls.answered[rows]
        g = aggregate(f, rows, gid, groups, port_all, answered, several_files)
        order, starts = g.order, g.starts
        per = {
            "sev": np.maximum.reduceat(sev[order], starts).tolist(),
            "heuristic": np.logical_and.reduceat(cls.heuristic[rows][order], starts).tolist(),
            "silent": np.logical_and.reduceat(silent[rows][order], starts).tolist(),
            "scan": scan[order][starts].tolist(),
            "many": (ikey[order][starts] == MANY).tolist(),
            "wide": (svc[order][starts] == MANY).tolist(),
            "i_key": i_real[order][starts].tolist(),
            "r_key": r_real[order][starts].tolist(),
        }
        out = []
        for j in range(groups):
            i = g.rep[j]
            d = cls.decisions[int(cls.decision[i])]
            rule = index.matrix.rule(d.rule) if d.rule else None
            cov = coverage.get(d.rule) if VERDICTS[int(verdict[i])] == "allowed" else None
            problem = Problem(
                kind="scan" if per["scan"][j] else "flow",
                verdict=VERDICTS[int(verdict[i])],
                decision=d,
                rule=rule,
                proto_number=int(f["proto"][i]),
                port=int(port_all[i]),
                i_roles=roles.names[per["i_key"][j]],
                r_roles=roles.names[per["r_key"][j]],
                many_sources=per["many"][j],
                many_ports=per["wide"][j],
                severity=per["sev"][j],
                heuristic=per["heuristic"][j],
                silent=per["silent"][j],
                coverage=cov,
                groups=g,
                j=j,
                thresholds=self.thresholds,
                today=today or index.today,
                host=g.initiator_hosts[j][0] if g.initiators[j] == 1 else None,
            )
            out.append(finding_of(problem))
        return out

    def roll_up_of(self, p: Problem, f: Finding, only_host: str | None) -> str | None:
        """The id of the roll-up (scan, many sources, many ports) that the finding `f`,
        made earlier from problem `p` with the flows of one initiator `only_host`
        (None: of several), belongs to by now; None if none."""
        from dataclasses import replace

        from portmatrix.findings.wording import finding_id

        if f.kind != "flow":
            return None
        forbidden = p.verdict != "allowed"
        if only_host and forbidden and only_host in self._scanner_texts():
            return stable_id("scan", only_host)
        host = f.initiator if not p.i_roles and not p.many_sources else None
        d = p.decision
        named = exception_rule(d.exception) if d.exception else d.rule
        keyed_by_rule = p.verdict in ("allowed", "wrong-direction") and named
        service = named if keyed_by_rule else str(p.port)
        r_text = ",".join(p.r_roles)
        if host and (p.verdict, r_text, p.proto_number, service) in self.sources.reached:
            p = replace(p, many_sources=True)
        side = "*" if p.many_sources else ",".join(p.i_roles) or host
        wide = (p.verdict, side, r_text, p.proto_number) in self.ports.reached
        if forbidden and not keyed_by_rule and not p.many_ports and wide:
            p = replace(p, many_ports=True)
        target = finding_id(p, "flow", f.proto, f.port)
        return target if target != f.id else None

    def _scanner_texts(self) -> set[str]:
        return {to_text((hi << 64) | lo) for hi, lo in self.scans.scanners.values()}

    @staticmethod
    def _reached(tally: DistinctTally, mask, cols, values, name) -> np.ndarray:
        """Rows (of `mask`) whose roll-up key (`cols`) has reached the tally's
        threshold, counting distinct `values` (uint64); `name` gives the key as the
        tally keeps it, from a row of that key. Two sorts, and Python per key only."""
        out = np.zeros(len(mask), bool)
        at = np.flatnonzero(mask)
        if not len(at):
            return out
        kid, n, rep = dense(*(np.asarray(c)[at] for c in cols))
        vals = np.asarray(values, np.uint64)[at]
        first, _, _ = unique(mix(kid.astype(np.uint64), vals))
        counts = np.bincount(kid[first], minlength=n)
        few = first[counts[kid[first]] < tally.threshold]  # keys the tally must remember
        per_key: dict[int, list[int]] = {}
        for k, value in zip(kid[few].tolist(), vals[few].tolist(), strict=True):
            per_key.setdefault(k, []).append(value)
        reached = np.zeros(n, bool)
        for k, r in enumerate(at[rep].tolist()):
            key = name(r)
            if counts[k] >= tally.threshold:
                tally.reach(key)
                reached[k] = True
            else:
                reached[k] = tally.add(key, per_key.get(k, []))
        out[at] = reached[kid]
        return out


class _RoleKeys:
    """Role sets keyed by their real roles (exception pseudo-roles left out): key -1
    for none; names and text per key."""

    def __init__(self, role_map: RoleMap) -> None:
        canon: dict[frozenset[str], int] = {}
        keys = []
        for roles in role_map.index.sets:
            real = frozenset(real_roles(roles))
            keys.append(canon.setdefault(real, len(canon)) if real else -1)
        self.key = np.array(keys, np.int64)
        self.names: dict[int, list[str]] = {k: sorted(r) for r, k in canon.items()}
        self.names[-1] = []
        self.text = {k: ",".join(v) for k, v in self.names.items()}


class _Services:
    """Per decision, the service a problem is keyed by: the rule (or exception) for
    allowed and wrong-direction flows (code >= 1_000_000), else -1 (keyed by port)."""

    BASE = 1_000_000

    def __init__(self, cls: Classified, index: RuleIndex) -> None:
        self.names: list[str] = []
        codes = []
        for d in cls.decisions:
            name = exception_rule(d.exception) if d.exception else d.rule
            if d.verdict in ("allowed", "wrong-direction") and name:
                if name not in self.names:
                    self.names.append(name)
                codes.append(self.BASE + self.names.index(name))
            else:
                codes.append(-1)
        self.code = np.array(codes or [-1], np.int64)

    def text(self, code: int) -> str:
        return self.names[code - self.BASE] if code >= self.BASE else str(code)


def _severities(cls: Classified, index: RuleIndex, forbidden, silent) -> np.ndarray:
    """Per flow, its severity code on both axes (see the module docstring)."""
    required = np.array(
        [
            bool(d.rule) and index.matrix.rule(d.rule).required
            if d.verdict == "allowed" and d.rule and not d.exception
            else False
            for d in cls.decisions
        ]
        or [False]
    )
    blocked_allowed = (cls.verdict == ALLOWED) & cls.failed
    sev = np.full(len(cls.verdict), INFO, np.int64)
    sev[forbidden & cls.answered] = ERROR
    sev[forbidden & cls.answered & cls.heuristic] = WARNING
    sev[forbidden & silent] = WARNING
    sev[blocked_allowed] = np.where(required[cls.decision[blocked_allowed]], ERROR, WARNING)
    return sev
