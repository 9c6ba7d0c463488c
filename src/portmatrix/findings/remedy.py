"""What to do about a finding, in one line; and where a change to the matrix is the
fix, the YAML to paste into a site file: a rule between roles, or an exception
for hosts that hold no role (with `reason:` and `expires:` to fill in).

Nothing is suggested where the matrix is right and the network is not (allowed
traffic that failed: open the port), nor where the network already blocked
what the matrix forbids (nothing to do), nor for floods (filter them).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import yaml

from portmatrix.policy.matrix import format_ports, port_value

if TYPE_CHECKING:
    from portmatrix.findings.wording import Problem

EXPIRES_AFTER = dt.timedelta(days=90)  # a suggested exception's date, to review
NAMED = 10  # hosts an exception lists at most; more: a rule from or to `any`


@dataclass
class Fix:
    action: str
    yaml: str | None = None
    entry: tuple[str, dict] | None = None  # ("rules" | "exceptions", the entry)


def fix_of(
    p: Problem, kind: str, severity: str, fid: str, proto: str, port: int | None, what: str
) -> Fix:
    if kind == "scan":
        return _scan(p, fid, proto)
    if kind == "flood":
        return Fix(
            f"Filter or rate-limit {what} towards {_who(p.r_roles, p, 'resp')} at the edge; "
            "check the service copes (SYN cookies)."
        )
    if p.verdict == "allowed":
        return Fix(_allowed_action(p, what))
    if severity == "info":
        return Fix("Nothing to change: the network blocked it, as the matrix wants.")
    entry = _entry(p, fid, proto)
    pasted = (
        f"allow it with the suggested {'rule' if entry[0] == 'rules' else 'exception'} "
        "(-o site.yaml writes every suggestion)"
    )
    if p.heuristic:
        action = "Capture the start of these connections to confirm who opened them; "
    elif p.silent:
        action = "UDP without a reply proves nothing: check whether it gets through; "
    else:
        action = ""
    if p.verdict == "wrong-direction":
        action += (
            f"find out why {_who(p.i_roles, p, 'init')} opens {what}; if it must, {pasted} "
            f"(or set `initiator: either` on rule {p.rule.id}); else block it."
        )
    else:
        action += (
            f"block {what} from {_who(p.i_roles, p, 'init')} to {_who(p.r_roles, p, 'resp')}, "
            f"or if it is wanted, {pasted}."
        )
    action = action[0].upper() + action[1:]
    return Fix(action, _yaml(entry), entry)


def _who(roles: list[str], p: Problem, side: str) -> str:
    hosts = p.groups.initiator_hosts if side == "init" else p.groups.responder_hosts
    if roles:
        return ", ".join(roles)
    named = hosts[p.j]
    return ", ".join(named) if named else "the addresses with no role"


def _allowed_action(p: Problem, what: str) -> str:
    cov = p.coverage
    pairs = p.groups.pairs[p.j]
    where = ", ".join(f"{x['initiator']} → {x['responder']}" for x in pairs[:3])
    if cov is not None and cov.established:
        return f"Look at the hosts that failed ({where}): the service works elsewhere."
    name = f"exception {p.decision.exception}" if p.decision.exception else f"rule {p.rule.id}"
    if p.rule is not None and p.rule.required and not p.decision.exception:
        return (
            f"Open {what} from {_who(p.i_roles, p, 'init')} to {_who(p.r_roles, p, 'resp')} "
            f"on the firewalls between them: required {name} needs it."
        )
    return (
        f"If {name} is used here, open {what} towards {_who(p.r_roles, p, 'resp')}; "
        "if not, nothing to do."
    )


def _scan(p: Problem, fid: str, proto: str) -> Fix:
    g, j = p.groups, p.j
    host = g.initiator_hosts[j][0]
    runs = [r for r in g.ports[j] if r[1] >= 0]
    protos = sorted({r[0] for r in runs})
    action = f"Find out who scans from {host}"
    if g.answered_ports[j]:
        action += "; close or block the forbidden ports that answered"
    action += "; if it is an authorised scanner, declare it with the suggested exception."
    if len(protos) != 1:
        return Fix(action.replace(" with the suggested exception", " with an exception"))
    from portmatrix.textforms import proto_name

    lo, hi = min(r[1] for r in runs), max(r[2] for r in runs)
    entry = {
        "id": _word(f"scanner-{host}"),
        "from": [host],
        "to": p.r_roles or _hosts(g.responder_hosts[j]),
        "proto": proto_name(protos[0]),
        "ports": port_value(lo, hi),
        "reason": f"TODO: who runs this scanner, and why (portmatrix finding {fid})",
        "expires": (p.today + EXPIRES_AFTER).isoformat(),
    }
    if entry["to"] is None:
        return Fix(action.replace(" with the suggested exception", " with an exception"))
    return Fix(action, _yaml(("exceptions", entry)), ("exceptions", entry))


def _hosts(hosts: list[str]) -> list[str] | None:
    return hosts if hosts and len(hosts) <= NAMED else None


def _entry(p: Problem, fid: str, proto: str) -> tuple[str, dict]:
    """A rule when both sides hold roles (or a side is too many hosts to list: `any`),
    else an exception naming the hosts."""
    g, j = p.groups, p.j
    runs = [r for r in g.ports[j] if r[1] >= 0]
    ports = _ports_value(runs, proto)
    i_side = p.i_roles[:1] or _hosts(g.initiator_hosts[j])
    r_side = p.r_roles[:1] or _hosts(g.responder_hosts[j])
    if (p.i_roles and p.r_roles) or i_side is None or r_side is None:
        frm = p.i_roles[0] if p.i_roles else "any"
        to = p.r_roles[0] if p.r_roles else "any"
        rule = {
            "id": _word(f"site-{frm}-to-{to}-{proto}-{_port_word(runs)}"),
            "service": f"TODO: name the service ({proto} {_ports_text(runs)})",
            "proto": proto,
            **({"ports": ports} if ports is not None else {}),
            "from": frm,
            "to": to,
            "description": f"suggested by portmatrix for finding {fid}",
        }
        return "rules", rule
    exc = {
        "id": _word(f"allow-{'-'.join(i_side[:1])}-{proto}-{_port_word(runs)}"),
        "from": i_side,
        "to": r_side,
        "proto": proto,
        **({"ports": ports} if ports is not None else {}),
        "reason": f"TODO: who asked, and why (portmatrix finding {fid})",
        "expires": (p.today + EXPIRES_AFTER).isoformat(),
    }
    return "exceptions", exc


def _ports_value(runs, proto: str):
    if proto in ("icmp", "icmpv6") or not runs:
        return None
    values = [port_value(lo, hi) for _, lo, hi in runs]
    return values[0] if len(values) == 1 else values


def _ports_text(runs) -> str:
    return format_ports([(lo, hi) for _, lo, hi in runs])


def _port_word(runs) -> str:
    return _ports_text(runs) if len(runs) == 1 else "ports"


def _word(text: str) -> str:
    """A kebab-case id from any text (addresses included)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _yaml(entry: tuple[str, dict]) -> str:
    section, item = entry
    return yaml.safe_dump({section: [item]}, sort_keys=False, allow_unicode=True)
