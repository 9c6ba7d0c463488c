"""A draft as an ordinary rules file: YAML that `rules lint` accepts and
`policy.matrix` loads, with comments giving each rule's evidence.

Every value is written by PyYAML's safe dumper, never formatted into YAML by
hand, so no role description, address or path can break the file; comments
are cut to one line of printable text. The text is read back before it is
returned and must give exactly the data written.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from portmatrix.policy.learn import Draft, DraftRule, Unlearned
from portmatrix.policy.matrix import Role, Rule, port_value
from portmatrix.textforms import printable

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True)
class Provenance:
    """What the draft was made from, for its header."""

    inputs: list[tuple[str, str]]  # (path, sha256 or "")
    inventory: str | None
    base: list[str]  # the base matrix files, as loaded
    version: str
    check_command: str  # how to check traffic against the draft


def comment(text: str) -> str:
    """One comment line: printable characters only (a newline in a file name or
    a hostile string cannot end the comment)."""
    return f"# {printable(str(text))}".rstrip() + "\n"


def _dump(data) -> str:
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 16,
    )


def _indent(text: str) -> str:
    return "".join(f"  {line}" if line.strip() else line for line in text.splitlines(True))


def role_data(role: Role) -> dict:
    data: dict = {"description": role.description}
    addresses = [e.text for e in role.entries if e.hostname is None]
    hostnames = [e.text for e in role.entries if e.hostname is not None]
    if addresses:
        data["addresses"] = addresses
    if hostnames:
        data["hostnames"] = hostnames
    return data


def rule_data(rule: Rule) -> dict:
    data: dict = {"id": rule.id, "service": rule.service, "proto": rule.proto}
    if rule.ports:
        data["ports"] = port_value(*rule.ports[0])
    if rule.icmp_types:
        data["icmp_types"] = list(rule.icmp_types)
    data["from"] = rule.from_role
    data["to"] = rule.to_role
    if rule.required:
        data["required"] = True
    if rule.description:
        data["description"] = rule.description
    return data


def _evidence(r: DraftRule, buckets: int) -> list[str]:
    e = r.evidence
    state = "required" if r.rule.required else "not required"
    return [
        f"{e.flows} flow(s) from {e.initiators} host(s) to {e.responders}, e.g. {e.example}",
        f"first {e.first}, last {e.last}",
        f"{state}: seen in {e.buckets} of {buckets} time buckets ({r.share:.0%})",
    ]


def _what(r: DraftRule) -> str:
    rule = r.rule
    if rule.ports:
        lo, hi = rule.ports[0]
        where = f"{rule.proto}/{lo}" + (f"-{hi}" if hi != lo else "")
    else:
        where = f"{rule.proto} types {', '.join(map(str, rule.icmp_types))}"
    return f"{rule.from_role} → {rule.to_role} {where} ({rule.service})"


def _unlearned_line(u: Unlearned) -> str:
    if u.proto in ("icmp", "icmpv6"):
        where = f"{u.proto} type {u.port}"
    elif u.proto.isdigit():
        where = f"IP protocol {u.proto}"
    else:
        where = f"{u.proto}/{u.port}"
    outcomes = ", ".join(f"{k} {v}" for k, v in u.outcomes.items())
    return (
        f"  {u.from_role} → {u.to_role} {where}: {u.flows} flow(s) ({outcomes}), e.g. {u.example}"
    )


def header(draft: Draft, made: Provenance) -> list[str]:
    c, o = draft.counts, draft.options
    lines = [
        f"Drafted by portmatrix {made.version} (`portmatrix learn`) from traffic. Review every",
        "rule before enforcing it: a draft allows what was seen, not what should be.",
        "",
    ]
    lines += [
        f"input: {path}" + (f" (sha256 {digest})" if digest else "") for path, digest in made.inputs
    ]
    lines.append(f"inventory: {made.inventory or 'none'}")
    if made.base:
        lines.append(
            f"base: {', '.join(made.base)}: this file holds only what the base does not "
            "allow; layer it on top of the base"
        )
    if draft.window:
        lines.append(f"window: {draft.window[0]} → {draft.window[1]}")
    lines.append(
        f"{c['flows']} flows, {c['established']} established: {c['taught']} taught"
        + (f", {c['base_allowed']} already allowed by the base" if made.base else "")
        + (
            f", {c['out_of_scope']} out of scope (no role at either end)"
            if c["out_of_scope"]
            else ""
        )
        + (f"; {c['not_learned']} not learned (listed at the end)" if c["not_learned"] else "")
    )
    lines.append(
        f"options: --min-flows {o.min_flows} --min-hosts {o.min_hosts} --range-min-ports "
        f"{o.ranges.min_ports} --range-min-flows {o.ranges.min_flows} --group-min "
        f"{o.group_min} --buckets {o.buckets} --required-share {o.required_share:g}"
    )
    lines.append(f"check traffic against it: {made.check_command}")
    drafted = [n for n, origin in draft.origins.items() if origin == "draft"]
    if drafted:
        lines += [
            "",
            f"{len(drafted)} draft role(s) hold the addresses that have no role (defined below);",
            "name them, or move their addresses into the inventory.",
        ]
    if draft.choices:
        lines += ["", "Hosts with several roles, attributed per service:"]
        lines += [f"  {choice}" for choice in draft.choices]
    return lines


def footer(draft: Draft) -> list[str]:
    o = draft.options
    lines: list[str] = []
    if draft.kept_out:
        lines += [
            "",
            f"Kept out by --min-flows {o.min_flows} / --min-hosts {o.min_hosts} (add them by "
            "hand if they belong):",
        ]
        for r in draft.kept_out:
            e = r.evidence
            lines.append(
                f"  {_what(r)}: {e.flows} flow(s), {e.initiators} initiator(s), "
                f"{e.first} → {e.last}, e.g. {e.example}"
            )
    if draft.unlearned:
        lines += [
            "",
            "Seen but not learned (only established flows of TCP, UDP, SCTP and ICMP",
            "teach; UDP that never gets a reply, such as syslog or SNMP traps, is",
            "listed here too):",
        ]
        lines += [_unlearned_line(u) for u in draft.unlearned]
        if draft.unlearned_more:
            lines.append(f"  ... and {draft.unlearned_more} more")
    return lines


def render(draft: Draft, made: Provenance) -> str:
    """The draft as a commented rules file."""
    description = "Drafted from traffic by portmatrix learn"
    if made.base:
        description += f"; additions to {', '.join(made.base)}"
    data = {
        "name": draft.name,
        "description": description,
        "roles": {name: role_data(role) for name, role in draft.roles.items()},
        "rules": [rule_data(r.rule) for r in draft.rules],
    }
    parts = [comment(line) for line in header(draft, made)]
    parts.append(_dump({"name": data["name"], "description": data["description"]}))
    if data["roles"]:
        parts.append("roles:\n")
        parts += [_indent(_dump({name: role})) for name, role in data["roles"].items()]
    else:
        parts.append("roles: {}\n")
    if draft.rules:
        parts.append("rules:\n")
        for r, rule in zip(draft.rules, data["rules"], strict=True):
            parts += [_indent(comment(line)) for line in _evidence(r, draft.options.buckets)]
            parts.append(_indent(_dump([rule])))
    else:
        parts.append("rules: []\n")
    parts += [comment(line) for line in footer(draft)]
    text = "".join(parts)
    if yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) != data:
        raise AssertionError("the draft does not read back as written")  # a bug, never input
    return text
