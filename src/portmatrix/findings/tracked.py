"""One problem found step after step (watch's ticks): its numbers kept as they
add up, bounded, and worded again at the end as `check` words it.

Host counts are exact up to HOSTS_KEPT distinct hosts per side (then at least
that many), host pairs keep the PAIRS_KEPT busiest, ports are kept as one
sorted array of (protocol << 16 | port): a problem's memory is bounded, and a
watch's grows with problems, never with flows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from portmatrix.decode.keyhash import mix
from portmatrix.findings.aggregate import NAMED_HOSTS, Groups
from portmatrix.findings.columns import port_ranges
from portmatrix.findings.model import SEVERITIES, TOP_PAIRS, Coverage, Finding
from portmatrix.findings.wording import Problem, finding_of
from portmatrix.flows.model import Flows
from portmatrix.flows.table import distinct

HOSTS_KEPT = 10_000
PAIRS_KEPT = 1_000


@dataclass
class Tracked:
    problem: Problem
    finding: Finding  # as last worded
    flows: int = 0
    packets: int = 0
    bytes: int = 0
    first: str = ""
    last: str = ""
    outcomes: dict[str, int] = field(default_factory=dict)
    severity: int = 0
    heuristic: bool = True
    silent: bool = True
    hosts: tuple = ()  # (initiator hashes, responder hashes), sorted unique uint64
    named: tuple = ()  # (initiator texts, responder texts): at most NAMED_HOSTS + 1
    pairs: dict = field(default_factory=dict)  # (initiator, responder) -> flows
    frames: list[str] = field(default_factory=list)
    community: list[str] = field(default_factory=list)
    ports: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    answered: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @classmethod
    def of(cls, f: Finding, flows: Flows, answered: np.ndarray, port: np.ndarray) -> Tracked:
        """A finding just made from `flows` (`answered`, `port`: per flow, the port
        as the matrix matches it, computed once for all the findings of a tick)."""
        p: Problem = f.problem
        g, j, m = p.groups, p.j, f.members
        key = (flows["proto"][m].astype(np.int64) << 16) | port[m].astype(np.int64)
        return cls(
            problem=replace(p, groups=None, j=0),
            finding=replace(f, members=None, problem=None),
            flows=g.flows[j],
            packets=g.packets[j],
            bytes=g.bytes[j],
            first=g.first[j],
            last=g.last[j],
            outcomes=dict(g.outcomes[j]),
            severity=p.severity,
            heuristic=p.heuristic,
            silent=p.silent,
            hosts=(
                distinct(mix(flows["init_hi"][m], flows["init_lo"][m]))[:HOSTS_KEPT],
                distinct(mix(flows["resp_hi"][m], flows["resp_lo"][m]))[:HOSTS_KEPT],
            ),
            named=(
                _named(g.initiator_hosts[j], g.initiators[j]),
                _named(g.responder_hosts[j], g.responders[j]),
            ),
            pairs={(x["initiator"], x["responder"]): x["flows"] for x in g.pairs[j]},
            frames=list(g.frames[j]),
            community=list(g.community[j]),
            ports=distinct(key),
            answered=distinct(key[answered[m]]),
        )

    @property
    def only_initiator(self) -> str | None:
        """The one host that opened every flow, if it was one."""
        return self.named[0][0] if len(self.hosts[0]) == 1 and self.named[0] else None

    def add(self, o: Tracked) -> None:
        """`o`: the same problem, later."""
        self.flows += o.flows
        self.packets += o.packets
        self.bytes += o.bytes
        self.first = min(filter(None, (self.first, o.first)), default="")
        self.last = max(self.last, o.last)
        for k, v in o.outcomes.items():
            self.outcomes[k] = self.outcomes.get(k, 0) + v
        self.severity = max(self.severity, o.severity)
        self.heuristic &= o.heuristic
        self.silent &= o.silent
        self.hosts = tuple(
            distinct(np.r_[a, b])[:HOSTS_KEPT] for a, b in zip(self.hosts, o.hosts, strict=True)
        )
        self.named = tuple(
            sorted(set(a) | set(b))[: NAMED_HOSTS + 1]
            for a, b in zip(self.named, o.named, strict=True)
        )
        for k, v in o.pairs.items():
            self.pairs[k] = self.pairs.get(k, 0) + v
        if len(self.pairs) > PAIRS_KEPT:
            self.pairs = dict(sorted(self.pairs.items(), key=lambda kv: -kv[1])[:PAIRS_KEPT])
        self.ports = distinct(np.r_[self.ports, o.ports])
        self.answered = distinct(np.r_[self.answered, o.answered])
        if SEVERITIES.index(o.finding.severity) >= SEVERITIES.index(self.finding.severity):
            self.finding = o.finding

    def worded(self, coverage: dict[str, Coverage]) -> Finding:
        """The finding of everything added, worded as a check words it."""
        n_init, n_resp = (len(h) for h in self.hosts)
        pairs = sorted(self.pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_PAIRS]
        g = Groups(
            rep=[0],
            members=[np.zeros(0, np.int64)],
            flows=[self.flows],
            packets=[self.packets],
            bytes=[self.bytes],
            first=[self.first],
            last=[self.last],
            outcomes=[self.outcomes],
            initiators=[n_init],
            responders=[n_resp],
            initiator_hosts=[list(self.named[0]) if n_init <= NAMED_HOSTS else []],
            responder_hosts=[list(self.named[1]) if n_resp <= NAMED_HOSTS else []],
            pairs=[[{"initiator": a, "responder": b, "flows": n} for (a, b), n in pairs]],
            frames=[self.frames],
            community=[self.community],
            ports=_runs(self.ports),
            answered_ports=_runs(self.answered),
        )
        p = self.problem
        cov = coverage.get(p.decision.rule) if p.verdict == "allowed" else None
        f = finding_of(
            replace(
                p,
                groups=g,
                j=0,
                severity=self.severity,
                heuristic=self.heuristic,
                silent=self.silent,
                coverage=cov,
            )
        )
        return replace(f, members=None, problem=None)


def _named(hosts: list[str], count: int) -> list[str]:
    return hosts if count <= NAMED_HOSTS else hosts[: NAMED_HOSTS + 1]


def _runs(keys: np.ndarray) -> list[list[tuple[int, int, int]]]:
    return port_ranges(np.zeros(len(keys), np.int64), keys >> 16, keys & 0xFFFF, 1)
