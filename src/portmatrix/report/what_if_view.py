"""The what-if section of a check report (`check --what-if`): what enforcing
another matrix would change. One function per view, called by each report
with one line, so the section stays apart from the rest of the report.

Document fields (`what_if`, present only with --what-if):
  rules      the --what-if matrix files; matrix: its name
  summary    verdicts (count per verdict under it), changes (count per severity)
  changes    flows whose verdict would change, grouped: change (would-break,
             would-forbid, would-allow: see findings.whatif), severity, proto,
             port, initiator_roles, responder_roles (today's), now / now_rule,
             draft / draft_rule (verdicts, and the rules involved or null, today
             and under it), flows,
             answered, examples (host pairs), first_seen, last_seen
  coverage   required rules whose status would differ: rule, service, what,
             now, draft, severity
"""

from __future__ import annotations

from portmatrix.report.escape import html as e
from portmatrix.textforms import service_text

LABEL = {
    "would-break": "would break",
    "would-forbid": "would forbid (failing anyway)",
    "would-allow": "would allow",
}


def document_part(result) -> dict | None:
    """The `what_if` member of the JSON document, or None without --what-if."""
    w = getattr(result, "what_if", None)
    if w is None:
        return None
    return {
        "rules": w.files,
        "matrix": w.matrix,
        "summary": {"verdicts": w.verdicts, "changes": w.severity_counts()},
        "changes": [c.to_dict() for c in w.changes],
        "coverage": [c.to_dict() for c in w.coverage],
    }


def _roles(roles: list[str]) -> str:
    return ", ".join(roles) or "no role"


def change_line(c: dict) -> str:
    """One change in words."""
    return (
        f"{LABEL[c['change']]}: {_roles(c['initiator_roles'])} → "
        f"{_roles(c['responder_roles'])} {service_text(c['proto'], c['port'])}, "
        f"{c['flows']} flow(s), {c['answered']} answered; today {c['now']}"
        + (f" ({c['now_rule']})" if c["now_rule"] else "")
        + f", under the draft {c['draft']}"
        + (f" ({c['draft_rule']})" if c["draft_rule"] else "")
        + f"; e.g. {', '.join(c['examples'])}"
    )


def coverage_line(c: dict) -> str:
    return (
        f"required rule {c['rule']} ({c['service']}, {c['what']}): today {c['now']}, "
        f"under the draft {c['draft']}"
    )


def text_lines(doc: dict) -> list[tuple[str, str]]:
    """(severity, sentence) for the text report; [] without --what-if."""
    w = doc.get("what_if")
    if w is None:
        return []
    lines = [(c["severity"], change_line(c)) for c in w["changes"]]
    lines += [(c["severity"], coverage_line(c)) for c in w["coverage"]]
    return lines


def title(doc: dict) -> str:
    w = doc["what_if"]
    counts = w["summary"]["changes"]
    return (
        f"WHAT IF {', '.join(w['rules'])} were the matrix: {counts['error']} errors, "
        f"{counts['warning']} warnings, {counts['info']} info"
    )


def markdown_lines(doc: dict, cell) -> list[str]:
    """The section in Markdown; `cell` escapes a table cell."""
    w = doc.get("what_if")
    if w is None:
        return []
    lines = ["", f"### What if: {cell(', '.join(w['rules']))}", ""]
    if not (w["changes"] or w["coverage"]):
        return [*lines, "Nothing would change."]
    lines += [
        "| severity | change | initiator | responder | proto/port | flows | answered | "
        "today | under the draft | e.g. |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in w["changes"]:
        lines.append(
            f"| {c['severity']} | {c['change']} | {cell(_roles(c['initiator_roles']))} | "
            f"{cell(_roles(c['responder_roles']))} | {service_text(c['proto'], c['port'])} | "
            f"{c['flows']} | {c['answered']} | {c['now']} {cell(c['now_rule'] or '')} | "
            f"{c['draft']} {cell(c['draft_rule'] or '')} | {cell(', '.join(c['examples']))} |"
        )
    lines += [f"- {c['severity']}: {cell(coverage_line(c))}" for c in w["coverage"]]
    return lines


def html_sections(doc: dict) -> list[str]:
    """The section in HTML ([] without --what-if); every value escaped."""
    w = doc.get("what_if")
    if w is None:
        return []

    rows = "".join(
        f"<tr class='{e(c['severity'])}'><td class='{e(c['severity'])}'>{e(c['severity'])}</td>"
        f"<td>{e(LABEL[c['change']])}</td><td>{e(_roles(c['initiator_roles']))} → "
        f"{e(_roles(c['responder_roles']))}</td><td>{e(service_text(c['proto'], c['port']))}</td>"
        f"<td>{e(c['flows'])}</td><td>{e(c['answered'])}</td>"
        f"<td>{e(c['now'])} <code>{e(c['now_rule'] or '')}</code></td>"
        f"<td>{e(c['draft'])} <code>{e(c['draft_rule'] or '')}</code></td>"
        f"<td>{e(', '.join(c['examples']))}</td></tr>"
        for c in w["changes"]
    )
    coverage = "".join(
        f"<li class='{e(c['severity'])}'>{e(coverage_line(c))}</li>" for c in w["coverage"]
    )
    table = (
        "<table id='what-if'><tr><th>severity</th><th>change</th><th>roles</th>"
        "<th>service</th><th>flows</th><th>answered</th><th>today</th>"
        f"<th>under the draft</th><th>e.g.</th></tr>{rows}</table>"
        if rows
        else "<p>No flow would change verdict.</p>"
    )
    title = f"<h2>What if {e(', '.join(w['rules']))} were the matrix</h2>"
    listed = f"<ul id='what-if-coverage'>{coverage}</ul>" if coverage else ""
    return [title + table + listed]
