"""Findings in English: one sentence saying what is wrong and which rule is involved."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from portmatrix.findings.model import SEVERITIES, Finding, stable_id
from portmatrix.findings.wireshark import wireshark_filter
from portmatrix.policy.lookup import Decision, RuleIndex
from portmatrix.policy.roles import exception_rule
from portmatrix.textforms import service_text


def _roles_text(roles: list[str]) -> str:
    return ", ".join(roles) if roles else "no role"


def _towards(roles: list[str]) -> str:
    return ", ".join(roles) if roles else "an address with no role"


@dataclass
class FlowGroup:
    """The flows of one flow finding, grouped and counted (`grouping.flow_findings`)."""

    decision: Decision
    verdict: str
    proto: str
    port: int | None
    init: str
    resp: str
    i_roles: list[str]
    r_roles: list[str]
    severity: int
    heuristic: bool  # every flow's initiator is a guess
    silent: bool  # no flow got a reply, and silence proves nothing
    members: np.ndarray  # the flows' indices
    outcomes: dict[str, int]
    flows: int
    packets: int
    nbytes: int
    first: str
    last: str
    frames: list[str]


def flow_finding(g: FlowGroup, index: RuleIndex) -> Finding:
    """The finding of a group of flows, in words."""
    d, verdict, proto, port = g.decision, g.verdict, g.proto, g.port
    init, resp, i_roles, r_roles = g.init, g.resp, g.i_roles, g.r_roles
    outcomes = g.outcomes
    if proto not in ("tcp", "udp", "sctp", "icmp", "icmpv6"):
        port = None  # no ports the matrix could name
    what = service_text(proto, port)
    who = f"{init} ({_roles_text(i_roles)})"
    whom = f"{resp} ({_roles_text(r_roles)})"
    happened = _outcome_phrase(outcomes)
    rule_id = d.rule
    if verdict == "allowed":
        if d.exception:  # not a rule of the matrix: never required
            rule_id = exception_rule(d.exception)
            by = f"exception {d.exception}"
        else:
            rule = index.matrix.rule(d.rule)
            by = f"{'required ' if rule.required else ''}rule {rule.id} ({rule.service})"
        message = f"{who} → {whom} {what} is allowed by {by} but {happened}"
        fid_verdict = "allowed-failed"
    elif verdict == "wrong-direction":
        rule = index.matrix.rule(d.rule)
        message = (
            f"{who} opened {what} on {whom} ({happened}); the matrix allows only the "
            f"other way: rule {rule.id} ({rule.from_role} → {rule.to_role})"
        )
        fid_verdict = verdict
    elif verdict == "unexpected-source":
        message = (
            f"{who} reached {what} on {whom} ({happened}); that port is only allowed "
            f"from other sources: {', '.join(d.related)}"
        )
        fid_verdict = verdict
    else:
        message = (
            f"{who} reached {what} on {whom} ({happened}); nothing in the matrix "
            f"allows {what} towards {_towards(r_roles)}"
        )
        fid_verdict = verdict
    if g.heuristic:
        message += " — initiator guessed from ports (handshake not captured)"
    if verdict != "allowed" and g.silent:
        message += " — no reply, which does not show it was blocked"
    if d.expired:
        message += f"; expired exception {', '.join(d.expired)} would have allowed it"
    return Finding(
        id=stable_id(fid_verdict, ",".join(i_roles), init, ",".join(r_roles), resp, proto, port),
        severity=SEVERITIES[g.severity],
        kind="flow",
        verdict=verdict,
        message=message,
        proto=proto,
        port=port,
        initiator=init,
        initiator_roles=i_roles,
        responder=resp,
        responder_roles=r_roles,
        rule=rule_id,
        related_rules=list(d.related),
        flows=g.flows,
        outcomes=outcomes,
        packets=g.packets,
        bytes=g.nbytes,
        first_seen=g.first,
        last_seen=g.last,
        frames=g.frames,
        filter=wireshark_filter(proto, init, resp, port),
        heuristic=g.heuristic,
        expired_exceptions=list(d.expired),
        members=g.members,
    )


def _outcome_phrase(outcomes: dict[str, int]) -> str:
    phrases = {
        "established": "established",
        "refused": "refused",
        "unanswered": "left unanswered",
        "midstream": "seen mid-stream",
        "blocked": "blocked by a security group or firewall",
    }
    parts = [
        phrases[o] if n == 1 and len(outcomes) == 1 else f"{n} {phrases[o]}"
        for o, n in outcomes.items()
    ]
    return " and ".join(parts)
