"""Findings in English: what happened, which rule is involved, and what to do, in
words a network engineer would use; the id a baseline keeps."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from portmatrix.findings.aggregate import Groups
from portmatrix.findings.model import SEVERITIES, WARNING, Coverage, Finding, Thresholds, stable_id
from portmatrix.findings.remedy import fix_of
from portmatrix.findings.wireshark import wireshark_filter
from portmatrix.policy.lookup import Decision
from portmatrix.policy.matrix import Rule, port_value
from portmatrix.policy.roles import exception_rule
from portmatrix.textforms import proto_name, service_text

FLOOD_ANSWERED = 0.1  # many sources, at most this share answered: a flood


@dataclass
class Problem:
    """One problem's flows, grouped and counted (`grouping.Grouper`)."""

    kind: str  # flow | scan
    verdict: str
    decision: Decision
    rule: Rule | None
    proto_number: int
    port: int  # of the flow standing for the problem
    i_roles: list[str]
    r_roles: list[str]
    many_sources: bool
    many_ports: bool
    severity: int
    heuristic: bool  # every flow's initiator is a guess
    silent: bool  # no flow got a reply, and silence proves nothing
    coverage: Coverage | None  # of the allowing rule
    groups: Groups
    j: int  # the problem's index in `groups`
    thresholds: Thresholds
    today: dt.date
    host: str | None = None  # the initiator, when one host with no role is the problem


def ranges_text(runs: list[tuple[int, int, int]], with_proto: bool = False) -> str:
    """ "1-1024, 8443" (", and 3 more ranges" when cut); with the protocol names when
    the runs are of several protocols."""
    parts, last = [], None
    for p, lo, hi in runs:
        if lo < 0:
            parts.append(f"and {hi:,} more")
            continue
        text = str(port_value(lo, hi))
        if with_proto and p != last:
            text = f"{proto_name(p)} {text}"
            last = p
        parts.append(text)
    return ", ".join(parts)


def count_ports(runs: list[tuple[int, int, int]]) -> int:
    return sum(hi - lo + 1 for _, lo, hi in runs if lo >= 0)


def _roles_text(roles: list[str]) -> str:
    return ", ".join(roles) if roles else "no role"


def _side(hosts: list[str], count: int, roles: list[str]) -> str:
    """One side of a problem: the host and its roles, or the roles and how many hosts."""
    if count == 1 and hosts:
        return f"{hosts[0]} ({_roles_text(roles)})"
    if roles:
        return f"{_roles_text(roles)} ({count:,} hosts)"
    return f"{count:,} addresses with no role"


def outcome_phrase(outcomes: dict[str, int]) -> str:
    phrases = {
        "established": "established",
        "refused": "refused",
        "unanswered": "left unanswered",
        "midstream": "seen mid-stream",
        "blocked": "blocked",
    }
    return " and ".join(
        phrases.get(o, o) if n == 1 and len(outcomes) == 1 else f"{n:,} {phrases.get(o, o)}"
        for o, n in outcomes.items()
    )


def _what_happened(p: Problem, who: str, whom: str, what: str, port: int | None):
    """(kind, severity, attempts, message) of a problem: the sentence by verdict,
    and what a scan, a flood or an intermittent service changes about it."""
    g, j, d = p.groups, p.j, p.decision
    outcomes = g.outcomes[j]
    happened = outcome_phrase(outcomes)
    severity, attempts, kind = p.severity, None, p.kind
    if kind == "scan":
        return kind, max(severity, WARNING), None, _scan_message(p, who, whom, happened)
    if p.many_sources and outcomes.get("established", 0) <= FLOOD_ANSWERED * g.flows[j]:
        message = (
            f"{who} sent {what} to {whom} ({happened}): a flood — many sources, "
            "hardly any answered (spoofed addresses, or a misbehaving client)"
        )
        return "flood", max(severity, WARNING), None, message
    if p.verdict == "allowed":
        by = (
            f"exception {d.exception}"
            if d.exception
            else (f"{'required ' if p.rule.required else ''}rule {p.rule.id} ({p.rule.service})")
        )
        message = f"{who} → {whom} {what} is allowed by {by} but {happened}"
        cov = p.coverage
        if cov is not None and cov.established:
            severity, attempts = min(severity, WARNING), cov.flows
            message += (
                f" — intermittent: {g.flows[j]:,} of {cov.flows:,} attempts failed while "
                f"{cov.established:,} were established"
            )
    elif p.verdict == "wrong-direction":
        message = (
            f"{who} opened {what} on {whom} ({happened}); the matrix allows only the "
            f"other way: rule {p.rule.id} ({p.rule.from_role} → {p.rule.to_role})"
        )
    elif p.verdict == "unexpected-source":
        message = (
            f"{who} reached {what} on {whom} ({happened}); that port is only allowed "
            f"from other sources: {', '.join(d.related)}"
        )
    else:
        towards = _roles_text(p.r_roles) if p.r_roles else "an address with no role"
        message = (
            f"{who} reached {what} on {whom} ({happened}); nothing in the matrix "
            f"allows {what if port is not None else 'them'} towards {towards}"
        )
    return kind, severity, attempts, message


def finding_of(p: Problem) -> Finding:
    """The finding of one problem: its words (`_what_happened`), id, fix and counts.
    Long because a Finding has that many fields; each is one line."""
    g, j = p.groups, p.j
    proto = proto_name(p.proto_number)
    runs = g.ports[j]
    single = len(runs) == 1 and runs[0][1] == runs[0][2]
    has_ports = proto in ("tcp", "udp", "sctp", "icmp", "icmpv6")
    port = runs[0][1] if single and has_ports else None
    ports = ranges_text(runs, with_proto=p.kind == "scan") if has_ports else None
    if port is not None or not has_ports:
        what = service_text(proto, port)
    else:
        what = f"{count_ports(runs):,} {proto} ports ({ports})"
    who = _side(g.initiator_hosts[j], g.initiators[j], p.i_roles)
    whom = _side(g.responder_hosts[j], g.responders[j], p.r_roles)
    outcomes = g.outcomes[j]
    d = p.decision
    rule_id = d.rule or None
    if p.verdict == "allowed" and d.exception:
        rule_id = exception_rule(d.exception)
    kind, severity, attempts, message = _what_happened(p, who, whom, what, port)
    if p.heuristic:
        message += " — initiator guessed from ports (handshake not captured)"
    if p.verdict != "allowed" and p.silent and kind == "flow":
        message += " — no reply, which does not show it was blocked"
    if d.expired:
        message += f"; expired exception {', '.join(d.expired)} would have allowed it"
    fid = finding_id(p, kind, proto, port)
    fix = fix_of(p, kind, SEVERITIES[severity], fid, proto, port, what)
    return Finding(
        id=fid,
        severity=SEVERITIES[severity],
        kind=kind,
        verdict=p.verdict if kind != "scan" else "scan",
        message=message,
        action=fix.action,
        suggestion=fix.yaml,
        proto=proto,
        port=port,
        ports=ports,
        service=_service(p, what, kind),
        initiator=g.initiator_hosts[j][0] if g.initiators[j] == 1 else None,
        initiator_roles=p.i_roles,
        initiators=g.initiators[j],
        responder=g.responder_hosts[j][0] if g.responders[j] == 1 else None,
        responder_roles=p.r_roles,
        responders=g.responders[j],
        rule=rule_id if kind == "flow" else None,
        related_rules=list(d.related) if kind == "flow" else [],
        flows=g.flows[j],
        outcomes=outcomes,
        attempts=attempts,
        packets=g.packets[j],
        bytes=g.bytes[j],
        first_seen=g.first[j],
        last_seen=g.last[j],
        pairs=g.pairs[j],
        open_ports=ranges_text(g.answered_ports[j], True) or None if kind == "scan" else None,
        frames=g.frames[j],
        community_ids=g.community[j],
        filter=wireshark_filter(
            None if kind == "scan" else proto,
            g.initiator_hosts[j] or None,
            g.responder_hosts[j] or None,
            [] if kind == "scan" or not has_ports else [r for r in runs if r[1] >= 0],
        ),
        heuristic=p.heuristic,
        expired_exceptions=list(d.expired),
        members=g.members[j],
        problem=p,
        fix=fix.entry,
    )


def _scan_message(p: Problem, who: str, whom: str, happened: str) -> str:
    g, j = p.groups, p.j
    ports = count_ports(g.ports[j])
    open_ = ranges_text(g.answered_ports[j], True)
    found = f"; answered on {open_} — forbidden ports open" if open_ else "; none answered"
    t = p.thresholds
    return (
        f"{who} scanned {whom} on {ports:,} port(s) ({ranges_text(g.ports[j], True)}): "
        f"{happened}{found} (a scan: failed attempts on {t.scan_ports}+ ports of a host, "
        f"or on {t.scan_hosts}+ hosts on a port)"
    )


def _service(p: Problem, what: str, kind: str) -> str | None:
    if kind == "scan":
        return None
    if p.decision.exception and p.verdict == "allowed":
        return f"exception {p.decision.exception}"
    if p.rule is not None and p.verdict in ("allowed", "wrong-direction"):
        return p.rule.service
    return what


def finding_id(p: Problem, kind: str, proto: str, port: int | None) -> str:
    """Built from verdict, roles (the host when it has none), responder roles,
    protocol and service: never from the client's ephemeral port, nor from how many
    flows or hosts there were, so it stays the same from run to run."""
    if kind == "scan":
        return stable_id("scan", p.groups.initiator_hosts[p.j][0])
    if p.many_sources:
        initiator = "*"
    elif p.i_roles:
        initiator = ",".join(p.i_roles)
    else:
        initiator = p.groups.initiator_hosts[p.j][0] if p.groups else p.host
    if p.many_ports:
        service = "*"
    elif p.verdict in ("allowed", "wrong-direction") and (p.decision.rule or p.decision.exception):
        service = exception_rule(p.decision.exception) if p.decision.exception else p.rule.id
    else:
        service = p.port
    verdict = "allowed-failed" if p.verdict == "allowed" else p.verdict
    return stable_id(verdict, initiator, ",".join(p.r_roles), proto, service)
