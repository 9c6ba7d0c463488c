"""Give every flow one verdict and every rule its coverage: pure functions of the
flows, the compiled matrix and the role map.

Flows are grouped by what the matrix can tell apart (protocol, the interval of
the responder's port between rule and exception bounds, initiator's role set,
responder's role set); each group is decided once by the rule index. A capture
has few such groups even with millions of flows, or a scan of every port.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from portmatrix.decode.fields import any_of
from portmatrix.decode.transport import ICMP, ICMPV6, SCTP, TCP
from portmatrix.flows.model import (
    BLOCKED,
    BY_FIRST,
    BY_PORT,
    ESTABLISHED,
    MIDSTREAM,
    REFUSED,
    UNANSWERED,
    Flows,
)
from portmatrix.policy.lookup import VERDICTS, Decision, RuleIndex
from portmatrix.policy.roles import RoleMap
from portmatrix.textforms import proto_name

ALLOWED, OUT_OF_SCOPE = 0, 4  # codes: indexes into VERDICTS


@dataclass
class Classified:
    """Per flow: verdict code (index into VERDICTS), decision, roles; per rule: coverage."""

    verdict: np.ndarray  # int8
    decision: np.ndarray  # int32 index into `decisions`
    decisions: list[Decision]
    init_roles: np.ndarray  # int32 role-set id (RoleMap.roles_of)
    resp_roles: np.ndarray
    heuristic: np.ndarray  # bool: the initiator is a guess (port / first packet of TCP)
    answered: np.ndarray  # bool: the responder answered (established, or data both ways)
    failed: np.ndarray  # bool: refused, blocked, or a TCP/ICMP attempt left unanswered

    def take(self, index: np.ndarray) -> Classified:
        """The judgements of the flows at `index` (the decisions stay shared)."""
        return Classified(
            self.verdict[index],
            self.decision[index],
            self.decisions,
            self.init_roles[index],
            self.resp_roles[index],
            self.heuristic[index],
            self.answered[index],
            self.failed[index],
        )

    def counts(self) -> dict[str, int]:
        n = np.bincount(self.verdict, minlength=len(VERDICTS))
        return {v: int(c) for v, c in zip(VERDICTS, n, strict=True)}


def matrix_port(flows: Flows) -> np.ndarray:
    """The number the matrix matches: the responder's port, or the ICMP type."""
    icmp = any_of(flows["proto"], (ICMP, ICMPV6))
    return np.where(icmp, np.maximum(flows["icmp_req"], 0), flows["resp_port"])


def classify(flows: Flows, index: RuleIndex, role_map: RoleMap) -> Classified:
    n = len(flows)
    init_roles, resp_roles = role_map.flow_roles(flows)
    proto = flows["proto"].astype(np.int64)
    port = matrix_port(flows).astype(np.int64)
    for p in np.unique(proto).tolist():  # ports decided alike share one decision
        mine = proto == p
        port[mine] = index.buckets(proto_name(p), port[mine])
    combo = (
        (proto << 56)
        | (port << 40)
        | (init_roles.astype(np.int64) << 20)
        | resp_roles.astype(np.int64)
    )
    uniq, inverse = np.unique(combo, return_inverse=True)
    decisions: list[Decision] = []
    for value in uniq.tolist():
        # The protocol sits in the top byte: mask it, the sign bit carries protocols > 127.
        p, q = (value >> 56) & 0xFF, (value >> 40) & 0xFFFF
        i_set, r_set = (value >> 20) & 0xFFFFF, value & 0xFFFFF
        decisions.append(
            index.decide(proto_name(p), q, role_map.roles_of(i_set), role_map.roles_of(r_set))
        )
    decision = inverse.reshape(-1).astype(np.int32)
    codes = np.array([VERDICTS.index(d.verdict) for d in decisions] or [0], dtype=np.int8)
    verdict = codes[decision] if n else np.zeros(0, np.int8)
    by = flows["initiator_by"]
    tcp = proto == TCP
    heuristic = (by == BY_PORT) | (tcp & (by == BY_FIRST))
    outcome = flows["outcome"]
    answered = (outcome == ESTABLISHED) | (
        (outcome == MIDSTREAM) & (flows["pkts_fwd"] > 0) & (flows["pkts_rev"] > 0)
    )
    # UDP silence proves nothing: only TCP, SCTP and ICMP attempts without answer failed.
    silent_fail = any_of(proto, (TCP, ICMP, ICMPV6, SCTP)) & (outcome == UNANSWERED)
    failed = (outcome == REFUSED) | (outcome == BLOCKED) | silent_fail
    return Classified(
        verdict, decision, decisions, init_roles, resp_roles, heuristic, answered, failed
    )
