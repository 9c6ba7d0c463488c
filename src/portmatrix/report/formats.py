"""Machine formats of a check result: JSON, JSON lines (ECS), CSV, Markdown, and
the suggestions file (YAML rules and exceptions to review and paste)."""

from __future__ import annotations

import csv
import io
import json
import socket

from portmatrix import __version__
from portmatrix.report import escape, what_if_view
from portmatrix.report.document import document
from portmatrix.report.result import Result
from portmatrix.report.summary import made_by
from portmatrix.textforms import json_text, service_text

ECS_VERSION = "8.11.0"
ECS_SEVERITY = {"error": 3, "warning": 2, "info": 1}
# ECS network.transport is the IANA keyword, lower case: ICMPv6 is "ipv6-icmp".
ECS_TRANSPORT = {"icmpv6": "ipv6-icmp"}
CSV_COLUMNS = (
    "id",
    "severity",
    "kind",
    "verdict",
    "proto",
    "port",
    "ports",
    "service",
    "initiator",
    "initiator_roles",
    "initiators",
    "responder",
    "responder_roles",
    "responders",
    "rule",
    "flows",
    "outcomes",
    "first_seen",
    "last_seen",
    "frames",
    "filter",
    "heuristic",
    "part_of",
    "apps",
    "app_details",
    "message",
    "action",
)


def render_json(result: Result) -> str:
    return escape.json_text(json_text(document(result))) + "\n"


def observer(ifaces=()) -> dict:
    """Who saw the traffic: this host, and the capture interfaces (watch)."""
    out = {
        "product": "portmatrix",
        "vendor": "portmatrix",
        "version": __version__,
        "hostname": socket.gethostname(),
    }
    if ifaces:
        out["ingress"] = {"interface": {"name": ",".join(ifaces)}}
    return out


def _outcome(finding: dict) -> str:
    """ECS event.outcome: did the traffic get through?"""
    outcomes = finding["outcomes"]
    if finding["kind"] in ("coverage", "matrix"):
        return "unknown"
    return "success" if outcomes.get("established") or outcomes.get("midstream") else "failure"


def ecs_finding(
    finding: dict,
    ruleset: str,
    when: str | None = None,
    created: str | None = None,
    observer: dict | None = None,
) -> dict:
    """One finding (as a dict) as an Elastic Common Schema event. `when` stands in for
    a finding without a time of its own (coverage), so @timestamp is always set."""
    kind = finding["kind"]
    event = {
        "@timestamp": finding["first_seen"] or when or created,
        "ecs": {"version": ECS_VERSION},
        "event": {
            "kind": "alert",
            "category": ["network"],
            "type": ["connection", "denied"] if _outcome(finding) == "failure" else ["connection"],
            "action": finding["verdict"],
            "outcome": _outcome(finding),
            "severity": ECS_SEVERITY[finding["severity"]],
            "dataset": "portmatrix.findings",
            "module": "portmatrix",
            "id": finding["id"],
            "start": finding["first_seen"],
            "end": finding["last_seen"],
            "reason": finding["message"],
        },
        "message": finding["message"],
        "rule": {
            "id": finding["rule"] or finding["verdict"],
            "name": finding["service"] or finding["verdict"],
            "ruleset": ruleset,
            "category": finding["verdict"],
        },
        "network": {
            "transport": ECS_TRANSPORT.get(finding["proto"], finding["proto"]),
            "type": _ip_type(finding),
        },
        "labels": {"severity": finding["severity"], "finding_kind": kind},
        "observer": observer or {"product": "portmatrix", "version": __version__},
        "portmatrix": {
            k: finding[k]
            for k in (
                "initiator_roles",
                "responder_roles",
                "initiators",
                "responders",
                "flows",
                "outcomes",
                "pairs",
                "ports",
                "open_ports",
                "frames",
                "filter",
                "heuristic",
                "related_rules",
                "action",
                "part_of",
                "rests_on",
                "apps",
                "app_details",
            )
        },
    }
    if protocol := main_app(finding):
        event["network"]["protocol"] = protocol
    if created:
        event["event"]["created"] = created
    event["network"] = {k: v for k, v in event["network"].items() if v is not None}
    if finding["community_ids"]:
        event["network"]["community_id"] = finding["community_ids"]
    for side, host, roles in (
        ("source", finding["initiator"], finding["initiator_roles"]),
        ("destination", finding["responder"], finding["responder_roles"]),
    ):
        entry = {}
        if host:
            entry["ip"] = host
            entry["address"] = host
        if roles:
            entry["domain"] = ",".join(roles)
        if (
            side == "destination"
            and finding["port"] is not None
            and finding["proto"] in ("tcp", "udp", "sctp")
        ):
            entry["port"] = finding["port"]
        if entry:
            event[side] = entry
    if finding["packets"]:
        event["network"]["packets"] = finding["packets"]
        event["network"]["bytes"] = finding["bytes"]
    return _without_nulls(event)


UNNAMED = ("unidentified", "no-payload")


def main_app(finding: dict) -> str | None:
    """The application most of a finding's labelled flows carried (ECS
    `network.protocol`), None when none was named from their payload."""
    named = [label for label in finding.get("apps", {}) if label not in UNNAMED]
    return named[0] if named else None


def apps_text(finding: dict) -> str:
    """ "ssh 3, unidentified 1 — ssh server=OpenSSH_9.2p1": the labels of a finding's
    flows (from their payload) and what they showed; "" when none was labelled, or
    none of its flows carried any payload (refused, unanswered: nothing to name)."""
    if set(finding.get("apps") or ()) <= {"no-payload"}:
        return ""
    counts = ", ".join(f"{label} {n}" for label, n in finding["apps"].items())
    details = "; ".join(finding["app_details"])
    return counts + (f" — {details}" if details else "")


def _without_nulls(doc: dict) -> dict:
    """ECS leaves absent fields out (an empty value is not a value); the portmatrix
    namespace keeps its nulls, as the JSON report has them."""
    return {
        k: v if k == "portmatrix" or not isinstance(v, dict) else _without_nulls(v)
        for k, v in doc.items()
        if v is not None
    }


def _ip_type(finding: dict) -> str | None:
    host = finding["initiator"] or finding["responder"]
    if not host:
        return None
    return "ipv6" if ":" in host else "ipv4"


def ecs_event(finding: dict, doc: dict) -> dict:
    """One finding of a check's document as an ECS event."""
    window = doc["summary"]["time_window"] or {}
    return ecs_finding(
        finding,
        doc["inputs"]["matrix"],
        window.get("first"),
        doc["report"]["created"],
        observer() if doc["report"]["created"] else None,  # goldens name no machine
    )


def render_jsonl(result: Result) -> str:
    doc = document(result)
    return "".join(escape.json_line(ecs_event(f, doc)) + "\n" for f in doc["findings"])


def _cell(value) -> str:
    if isinstance(value, list):
        return " ".join(map(str, value))
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    return "" if value is None else str(value)


def render_csv(result: Result) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for f in document(result)["findings"]:
        writer.writerow(escape.csv_row(_cell(f[c]) for c in CSV_COLUMNS))
    return out.getvalue()


def _md(text) -> str:
    """A value as literal Markdown text: no markup, no line break, no table cell."""
    return escape.markdown(_cell(text))


def who(f: dict, side: str) -> str:
    """One side of a finding in a few words: the host, or the roles and a count."""
    host = f["initiator" if side == "init" else "responder"]
    roles = f["initiator_roles" if side == "init" else "responder_roles"]
    count = f["initiators" if side == "init" else "responders"]
    if host:
        return f"{host} ({', '.join(roles) or 'no role'})"
    if roles:
        return f"{', '.join(roles)} ({count} hosts)"
    return f"{count} with no role" if count else "—"


def label(f: dict) -> str:
    """What a finding is, in a word or three — the one wording every report uses:
    the verdict; for a scan, "scan"; for a flood, "flood, " and its verdict; for
    allowed traffic (that failed), what happened to it."""
    if f["kind"] == "scan":
        return "scan"
    if f["kind"] == "flood":
        return f"flood, {f['verdict']}"
    if f["verdict"] == "allowed" and f["outcomes"]:
        return "allowed but " + " and ".join(f["outcomes"])
    return f["verdict"]


def what(f: dict) -> str:
    if f["port"] is not None or not f["ports"]:
        return service_text(f["proto"], f["port"]) if f["proto"] else ""
    return f"{f['proto'] or ''} {f['ports']}".strip()


def render_markdown(result: Result) -> str:
    doc = document(result)
    s = doc["summary"]
    lines = [
        f"## portmatrix {made_by(doc)} — {_md(doc['inputs']['matrix'])}",
        "",
        f"Made by portmatrix {doc['tool']['version']}"
        + (f" on {doc['report']['created']}" if doc["report"]["created"] else "")
        + ".",
        "",
    ]
    for cap in doc["inputs"]["captures"]:
        lines.append(
            f"- capture {escape.markdown_code(cap['path'])} ({cap['format']}, {cap['frames']} "
            f"frames, sha256 `{cap['sha256']}`)"
        )
    lines.append(
        f"- rules: {_md(', '.join(doc['inputs']['rules']))}; inventory: "
        f"{_md(doc['inputs']['inventory'] or 'none')}"
    )
    if doc["inputs"]["filters"]:
        lines.append(f"- filters: {_md(json.dumps(doc['inputs']['filters']))}")
    if s["time_window"]:
        lines.append(f"- window: {s['time_window']['first']} → {s['time_window']['last']}")
    lines.append(
        f"- {s['packets']} packets, {s['flows']} flows; verdicts: "
        + ", ".join(f"{k} {v}" for k, v in s["verdicts"].items())
    )
    counts = s["findings"]
    lines.append(
        f"- {counts['error']} errors, {counts['warning']} warnings, {counts['info']} info "
        "(each problem once)"
    )
    lines += ["", "### Findings", ""]
    if doc["findings"]:
        lines += [
            "| severity | what | initiator | responder | service | application | flows | "
            "first seen | last seen | what happened, and what to do | Wireshark filter | id |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for f in doc["findings"]:
            kind = label(f)
            if f["part_of"]:
                kind = f"↳ {kind} (part of {f['part_of']})"
            lines.append(
                f"| {f['severity']} | {_md(kind)} | {_md(who(f, 'init'))} | "
                f"{_md(who(f, 'resp'))} | {_md(what(f))} | {_md(apps_text(f))} | {f['flows']} | "
                f"{f['first_seen'] or ''} | {f['last_seen'] or ''} | {_md(f['message'])} — "
                f"**{_md(f['action'])}** | "
                f"{escape.markdown_code(f['filter'], table=True) if f['filter'] else ''}"
                f" | `{f['id']}` |"
            )
    else:
        lines.append("No findings.")
    lines += [
        "",
        "### Required services",
        "",
        "| rule | service | ports | established | failed | status |",
        "|---|---|---|---|---|---|",
    ]
    for c in doc["coverage"]:
        if c["required"]:
            lines.append(
                f"| {_md(c['rule'])} | {_md(c['service'])} | {_md(c['proto'])}/{_md(c['ports'])} | "
                f"{c['established']} | {c['failed']} | {c['status']} |"
            )
    lines += what_if_view.markdown_lines(doc, _md)
    if doc["notices"]:
        lines += ["", "### Notices", ""] + [f"- {_md(n)}" for n in doc["notices"]]
    return "\n".join(lines) + "\n"


def render_suggestions(result: Result) -> str:
    """Every suggested rule and exception as one site file to review, fill in (the
    TODO fields) and layer on the matrix with --rules; `rules lint` accepts it."""
    import yaml

    rules, exceptions, seen = [], [], set()
    for f in result.findings:
        if f.fix is None:
            continue
        section, entry = f.fix
        if entry["id"] in seen:
            continue
        seen.add(entry["id"])
        (rules if section == "rules" else exceptions).append(entry)
    doc = {
        "name": f"{result.matrix.name}-suggestions",
        "description": "Rules and exceptions portmatrix suggests from the findings of a "
        "check: review each one, fill in the TODO fields, delete what should stay "
        "forbidden, and layer the file with --rules.",
    }
    if rules:
        doc["rules"] = rules
    if exceptions:
        doc["exceptions"] = exceptions
    head = (
        "# Suggested by portmatrix "
        + __version__
        + ": nothing here is allowed until you review it and give it with --rules.\n"
    )
    return head + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=88)
