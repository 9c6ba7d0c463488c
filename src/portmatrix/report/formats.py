"""Machine formats of a check result: JSON, JSON lines (ECS), CSV, Markdown."""

from __future__ import annotations

import csv
import io
import json

from portmatrix import __version__
from portmatrix.report import escape
from portmatrix.report.document import document
from portmatrix.report.result import Result
from portmatrix.textforms import json_text, service_text

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
    "initiator",
    "initiator_roles",
    "responder",
    "responder_roles",
    "rule",
    "flows",
    "outcomes",
    "first_seen",
    "last_seen",
    "frames",
    "filter",
    "heuristic",
    "message",
)


def render_json(result: Result) -> str:
    return escape.json_text(json_text(document(result))) + "\n"


def ecs_event(finding: dict, doc: dict) -> dict:
    """One finding as an Elastic Common Schema event, for SIEMs."""
    window = doc["summary"]["time_window"] or {}
    return ecs_finding(finding, doc["inputs"]["matrix"], window.get("first"))


def ecs_finding(finding: dict, ruleset: str, when: str | None = None) -> dict:
    """One finding (as a dict) as an ECS event; `when` stands in for a missing time."""
    event = {
        "@timestamp": finding["first_seen"] or when,
        "event": {
            "kind": "alert",
            "category": ["network"],
            "type": ["connection"],
            "action": finding["verdict"],
            "severity": ECS_SEVERITY[finding["severity"]],
            "id": finding["id"],
            "start": finding["first_seen"],
            "end": finding["last_seen"],
        },
        "message": finding["message"],
        "rule": {"id": finding["rule"] or None, "ruleset": ruleset},
        "network": {"transport": ECS_TRANSPORT.get(finding["proto"], finding["proto"]) or None},
        "labels": {"severity": finding["severity"], "finding_kind": finding["kind"]},
        "observer": {"product": "portmatrix", "version": __version__},
        "portmatrix": {
            k: finding[k]
            for k in (
                "initiator_roles",
                "responder_roles",
                "flows",
                "outcomes",
                "frames",
                "filter",
                "heuristic",
                "related_rules",
            )
        },
    }
    if finding["initiator"]:
        event["source"] = {"ip": finding["initiator"]}
    if finding["responder"]:
        event["destination"] = {"ip": finding["responder"], "port": finding["port"]}
    if finding["packets"]:
        event["network"]["packets"] = finding["packets"]
        event["network"]["bytes"] = finding["bytes"]
    return event


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


def render_markdown(result: Result) -> str:
    plain = document(result)
    doc = escape.for_markdown(plain)  # every value as literal text: no markup from inputs
    s = doc["summary"]
    lines = [
        f"## portmatrix check — {doc['inputs']['matrix']}",
        "",
        f"Made by portmatrix {doc['tool']['version']}.",
        "",
    ]
    for cap, path in zip(doc["inputs"]["captures"], plain["inputs"]["captures"], strict=True):
        lines.append(
            f"- capture {escape.markdown_code(path['path'])} ({cap['format']}, {cap['frames']} "
            f"frames, sha256 `{cap['sha256']}`)"
        )
    lines.append(
        f"- rules: {', '.join(doc['inputs']['rules'])}; inventory: "
        f"{doc['inputs']['inventory'] or 'none'}"
    )
    if doc["inputs"]["filters"]:
        lines.append(f"- filters: {escape.markdown(json.dumps(plain['inputs']['filters']))}")
    if s["time_window"]:
        lines.append(f"- window: {s['time_window']['first']} → {s['time_window']['last']}")
    lines.append(
        f"- {s['packets']} packets, {s['flows']} flows; verdicts: "
        + ", ".join(f"{k} {v}" for k, v in s["verdicts"].items())
    )
    lines += ["", "### Findings", ""]
    if doc["findings"]:
        lines += [
            "| severity | verdict | initiator | responder | proto/port | flows | what | id |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for f in doc["findings"]:
            port = service_text(f["proto"], f["port"])
            lines.append(
                f"| {f['severity']} | {f['verdict']} | {_cell(f['initiator'])} | "
                f"{_cell(f['responder'])} | {port} | {f['flows']} | "
                f"{_cell(f['message'])} | {f['id']} |"
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
                f"| {c['rule']} | {_cell(c['service'])} | {c['proto']}/{c['ports']} | "
                f"{c['established']} | {c['failed']} | {c['status']} |"
            )
    if doc["notices"]:
        lines += ["", "### Notices", ""] + [f"- {_cell(n)}" for n in doc["notices"]]
    return "\n".join(lines) + "\n"
