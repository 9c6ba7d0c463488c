"""A self-contained HTML report to attach to a ticket, readable at any scale.

One file: inline CSS and SVG, no scripts, no fonts or images fetched. Every
string that comes from traffic or from the inputs (addresses, file names,
messages, rule texts) goes through `report.escape.html`.

Sections: who made it (version, command line, time); inputs and summary;
notices; the observed role × role matrix (for every pair of roles, each service
the matrix allows coloured by what was seen, and every violation in its cell);
a timeline of the findings with time ticks; the findings by severity, then
size, each one collapsible (`<details>`) with what to do, the YAML to paste,
the busiest host pairs and a Wireshark filter; the required services; the
coverage of every rule. Its size grows with findings and rules, never with
flows.
"""

from __future__ import annotations

import datetime as dt

from portmatrix.report import escape, what_if_view
from portmatrix.report.document import document
from portmatrix.report.formats import apps_text, label, what, who
from portmatrix.report.summary import made_by

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:80rem;
 padding:0 1rem;color:#1d2330}
h1{font-size:1.5rem;margin:0 0 .3rem}h2{font-size:1.15rem;margin:2rem 0 .6rem;
 border-bottom:1px solid #d8dce5;padding-bottom:.2rem}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border:1px solid #d8dce5;padding:.3rem .45rem;text-align:left;vertical-align:top}
th{background:#f1f3f7}code{font-size:12px;word-break:break-all}
code.id{white-space:nowrap;word-break:normal}
pre{background:#f6f8fa;border:1px solid #d8dce5;padding:.5rem;overflow-x:auto;font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:.6rem}.card{border:1px solid #d8dce5;border-radius:6px;
 padding:.5rem .8rem;min-width:8rem}.card b{display:block;font-size:1.3rem}
.error{color:#b3001b}.warning{color:#9a5b00}.info{color:#20609f}
details.finding{border:1px solid #d8dce5;border-left:5px solid #999;border-radius:4px;
 margin:.35rem 0;padding:.3rem .6rem}
details.finding.error{border-left-color:#b3001b}details.finding.warning{border-left-color:#d08700}
details.finding.info{border-left-color:#3c84c9}details.part{margin-left:2rem}
details.finding summary{cursor:pointer;color:#1d2330}
details.finding summary b{margin-right:.4rem}
.badge{display:inline-block;border-radius:3px;padding:0 .35rem;font-size:12px;color:#fff;
 margin-right:.3rem}.badge.error{background:#b3001b}.badge.warning{background:#d08700}
.badge.info{background:#3c84c9}
.app{border:1px solid #888;border-radius:3px;padding:0 .3rem;font-size:12px;margin-left:.3rem}
td.ok{background:#dff3e3}td.required-unreachable{background:#f9d2d6}
td.missing-required{background:#fbe7c2}td.none{background:#fafafa;color:#999}
.chip{display:inline-block;border-radius:3px;padding:0 .3rem;margin:.1rem;font-size:12px;
 border:1px solid #ccd}.chip.seen{background:#dff3e3}.chip.failed{background:#f9d2d6}
.chip.missing{background:#fbe7c2}.chip.unused{background:#f4f4f4;color:#888}
.chip.v-error{background:#b3001b;color:#fff}.chip.v-warning{background:#d08700;color:#fff}
.chip.v-info{background:#3c84c9;color:#fff}
.notice{background:#fff6db;border:1px solid #f0d68a;padding:.4rem .6rem;margin:.3rem 0}
.muted{color:#667}.legend .chip{margin-right:.5rem}
"""
SEVERITY_ORDER = ("error", "warning", "info")
COLOUR = {"error": "#b3001b", "warning": "#d08700", "info": "#3c84c9"}
NO_ROLE = "no role"


def _e(value) -> str:
    return escape.html(value)


def _seconds(iso: str | None) -> float | None:
    """Seconds since the epoch of an ISO 8601 time; None for no time."""
    try:
        return dt.datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return None


def render_html(result) -> str:
    doc = document(result)
    inputs = doc["inputs"]
    report = doc["report"]
    made = f"portmatrix {_e(doc['tool']['version'])}"
    if report["created"]:
        made += f", {_e(report['created'])}"
    command = (
        f"<p class='muted'>Command: <code>{_e(' '.join(report['command']))}</code></p>"
        if report["command"]
        else ""
    )
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>portmatrix {made_by(doc)} — {_e(inputs['matrix'])}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>portmatrix {made_by(doc)} — {_e(inputs['matrix'])}</h1>",
        f"<p class='muted'>{made}; rules {_e(', '.join(inputs['rules']))}; inventory "
        f"{_e(inputs['inventory'] or 'none')}</p>",
        command,
        _inputs(doc),
        _cards(doc),
        "".join(f"<div class='notice'>{_e(n)}</div>" for n in doc["notices"]),
        "<h2>Observed role × role matrix</h2>",
        _role_matrix(result, doc),
        "<h2>Timeline of findings</h2>",
        _timeline(doc),
        f"<h2>Findings ({sum(not f['part_of'] for f in doc['findings'])})</h2>",
        _thresholds(doc),
        _findings(doc),
        "<h2>Required services</h2>",
        _grid(doc),
        "<h2>Coverage of every rule</h2>",
        _coverage(doc),
        *what_if_view.html_sections(doc),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _inputs(doc: dict) -> str:
    rows = "".join(
        f"<tr><td>{_e(c['path'])}</td><td>{_e(c['format'])}</td><td>{_e(c['size'])}</td>"
        f"<td>{_e(c['frames'])}</td><td><code>{_e(c['sha256'])}</code></td>"
        f"<td>{_e(c['truncated'] or '')}</td></tr>"
        for c in doc["inputs"]["captures"]
    )
    window = doc["summary"]["time_window"]
    span = f"{_e(window['first'])} → {_e(window['last'])}" if window else "no traffic"
    filters = doc["inputs"]["filters"]
    narrowed = f"<p>Filters: <code>{_e(filters)}</code></p>" if filters else ""
    return (
        "<table id='inputs'><tr><th>input</th><th>format</th><th>bytes</th>"
        f"<th>frames</th><th>SHA-256</th><th>cut short</th></tr>{rows}</table>"
        f"<p>Window: {span}</p>{narrowed}"
    )


def _cards(doc: dict) -> str:
    s = doc["summary"]
    cards = [("packets", s["packets"]), ("flows", s["flows"])]
    cards += [(v, n) for v, n in s["verdicts"].items()]
    cards += [(f"{k} findings", n) for k, n in s["findings"].items()]
    return (
        "<div class='cards' id='summary'>"
        + "".join(f"<div class='card'><b>{_e(n)}</b>{_e(name)}</div>" for name, n in cards)
        + "</div>"
    )


def _role_matrix(result, doc: dict) -> str:
    """Rows: initiator roles; columns: responder roles. In each cell every service
    the matrix allows there, coloured by what was seen, then the violations."""
    coverage = {c["rule"]: c for c in doc["coverage"]}
    cells: dict[tuple[str, str], list[str]] = {}
    for rule in result.matrix.rules:
        c = coverage[rule.id]
        if c["established"]:
            state, seen = "seen", f"{c['established']} established"
        elif c["failed"]:
            state, seen = "failed", f"{c['failed']} failed"
        elif rule.required:
            state, seen = "missing", "never seen, required"
        else:
            state, seen = "unused", "never seen"
        ports = f"{rule.proto}/{rule.ports_text}" if rule.ports else rule.proto
        cells.setdefault((rule.from_role, rule.to_role), []).append(
            f"<span class='chip {state}' title='{_e(rule.id)}: {_e(rule.service)} — "
            f"{_e(seen)}'>{_e(ports)}</span>"
        )
    for f in doc["findings"]:
        if f["kind"] in ("coverage", "matrix") or f["part_of"]:
            continue
        chip = (
            f"<a class='chip v-{_e(f['severity'])}' href='#{_e(f['id'])}' "
            f"title='{_e(f['message'])}'>{_e(label(f))} {_e(what(f))}</a>"
        )
        for i in f["initiator_roles"] or [NO_ROLE]:
            for r in f["responder_roles"] or [NO_ROLE]:
                cells.setdefault((i, r), []).append(chip)
    if not cells:
        return "<p class='muted'>No rules and no findings.</p>"
    rows = sorted({i for i, _ in cells}, key=lambda x: (x == NO_ROLE, x))
    cols = sorted({r for _, r in cells}, key=lambda x: (x == NO_ROLE, x))
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    body = "".join(
        f"<tr><th>{_e(i)}</th>"
        + "".join(f"<td>{''.join(cells.get((i, r), []))}</td>" for r in cols)
        + "</tr>"
        for i in rows
    )
    legend = (
        "<p class='legend muted'>Allowed services: <span class='chip seen'>established"
        "</span><span class='chip failed'>only failed</span><span class='chip missing'>"
        "never seen, required</span><span class='chip unused'>never seen, optional</span>"
        " Findings: <span class='chip v-error'>error</span><span class='chip v-warning'>"
        "warning</span><span class='chip v-info'>info</span> — rows open, columns answer."
        "</p>"
    )
    return f"{legend}<table id='role-matrix'><tr><th>from \\ to</th>{head}</tr>{body}</table>"


def _ticks(start: float, end: float, n: int = 6) -> list[float]:
    """Round time ticks across [start, end]."""
    span = max(end - start, 1e-6)
    steps = (
        1,
        2,
        5,
        10,
        15,
        30,
        60,
        120,
        300,
        600,
        900,
        1800,
        3600,
        7200,
        21600,
        43200,
        86400,
        172800,
        604800,
    )
    step = next((s for s in steps if span / s <= n), steps[-1])
    first = (int(start // step) + 1) * step
    return [t for t in (first + k * step for k in range(n + 1)) if t <= end]


def _timeline(doc: dict) -> str:
    window = doc["summary"]["time_window"] or {}
    start, end = _seconds(window.get("first")), _seconds(window.get("last"))
    shown = [
        f
        for f in doc["findings"]
        if not f["part_of"]
        and _seconds(f["first_seen"]) is not None
        and _seconds(f["last_seen"]) is not None
    ]
    if start is None or end is None or not shown:
        return "<p class='muted'>No finding with a time.</p>"
    span = max(end - start, 1e-6)
    width, bar, left = 900, 10, 90
    lanes = {sev: [f for f in shown if f["severity"] == sev] for sev in SEVERITY_ORDER}
    y, marks = 10, []
    for sev, found in lanes.items():
        height = max(1, len(found)) * (bar + 2) + 8
        marks.append(
            f"<text x='0' y='{y + 12}' class='{sev}'>{sev} ({len(found)})</text>"
            f"<rect x='{left}' y='{y}' width='{width}' height='{height - 4}' fill='#f7f8fa'/>"
        )
        for k, f in enumerate(found):
            x1 = left + width * (_seconds(f["first_seen"]) - start) / span
            x2 = left + width * (_seconds(f["last_seen"]) - start) / span
            marks.append(
                f"<a href='#{_e(f['id'])}'><rect x='{x1:.1f}' y='{y + 4 + k * (bar + 2)}' "
                f"width='{max(x2 - x1, 2):.1f}' height='{bar}' fill='{COLOUR[sev]}'>"
                f"<title>{_e(f['id'])}: {_e(f['message'])}</title></rect></a>"
            )
        y += height
    for t in _ticks(start, end):
        x = left + width * (t - start) / span
        clock = dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M:%S")
        marks.append(
            f"<line x1='{x:.1f}' y1='6' x2='{x:.1f}' y2='{y}' stroke='#c9ced8' "
            f"stroke-dasharray='2,3'/><text x='{x:.1f}' y='{y + 14}' text-anchor='middle' "
            f"class='muted'>{clock}</text>"
        )
    marks.append(
        f"<text x='{left}' y='{y + 30}' class='muted'>{_e(window['first'])}</text>"
        f"<text x='{left + width}' y='{y + 30}' text-anchor='end' class='muted'>"
        f"{_e(window['last'])}</text>"
    )
    return (
        f"<svg id='timeline' viewBox='0 0 {left + width + 10} {y + 36}' width='100%' "
        f"role='img' aria-label='findings over time' font-size='12'>" + "".join(marks) + "</svg>"
    )


def _thresholds(doc: dict) -> str:
    t = doc["thresholds"]
    return (
        f"<p class='muted'>One finding per problem. A scan: an initiator whose forbidden "
        f"attempts failed on {t['scan_ports']}+ ports of a host or {t['scan_hosts']}+ "
        f"hosts on a port; {t['many_sources']}+ sources with no role on one service, or "
        f"forbidden ports between two sides, are one finding.</p>"
    )


def _finding(f: dict) -> str:
    if f["kind"] in ("coverage", "matrix"):
        where = f"rule {_e(f['rule'])}"
    else:
        where = f"{_e(who(f, 'init'))} → {_e(who(f, 'resp'))} {_e(what(f))}"
    rows = []
    if f["kind"] not in ("coverage", "matrix"):
        outcomes = ", ".join(f"{_e(k)} {_e(v)}" for k, v in f["outcomes"].items())
        rows.append(
            f"<p>{_e(f['flows'])} flow(s) ({outcomes}), {_e(f['packets'])} packets, "
            f"{_e(f['first_seen'])} → {_e(f['last_seen'])}; example frames "
            f"{_e(' '.join(f['frames']))}</p>"
        )
        if f["pairs"]:
            rows.append(
                "<table class='pairs'><tr><th>initiator</th><th>responder</th><th>flows</th>"
                "</tr>"
                + "".join(
                    f"<tr><td>{_e(p['initiator'])}</td><td>{_e(p['responder'])}</td>"
                    f"<td>{_e(p['flows'])}</td></tr>"
                    for p in f["pairs"]
                )
                + "</table>"
            )
        if apps := apps_text(f):
            rows.append(f"<p>Application (from the payload): {_e(apps)}</p>")
        if f["filter"]:
            rows.append(f"<p>Wireshark: <code>{_e(f['filter'])}</code></p>")
    if f["suggestion"]:
        rows.append(f"<pre>{_e(f['suggestion'])}</pre>")
    part = " part" if f["part_of"] else ""
    return (
        f"<details class='finding {_e(f['severity'])}{part}' id='{_e(f['id'])}'><summary>"
        f"<span class='badge {_e(f['severity'])}'>{_e(f['severity'])}</span>"
        f"<b>{_e(label(f))}</b>{where}{_app_badge(f)} · {_e(f['flows'])} flow(s) · "
        f"<code class='id'>{_e(f['id'])}</code></summary>"
        f"<p>{_e(f['message'])}</p><p><b>What to do:</b> {_e(f['action'])}</p>"
        + "".join(rows)
        + "</details>"
    )


def _app_badge(f: dict) -> str:
    """The application most of the finding's flows carried, beside what was reached."""
    from portmatrix.report.formats import main_app

    app = main_app(f)
    return f" <span class='app'>{_e(app)}</span>" if app else ""


def _findings(doc: dict) -> str:
    if not doc["findings"]:
        return "<p>No findings.</p>"
    parent = {f["id"]: f["severity"] for f in doc["findings"]}
    out = []
    for sev in SEVERITY_ORDER:
        group = [f for f in doc["findings"] if parent.get(f["part_of"], f["severity"]) == sev]
        if not group:
            continue
        problems = sum(not f["part_of"] for f in group)
        out.append(
            f"<details class='severity' open><summary><b class='{sev}'>{sev.upper()}S "
            f"({problems})</b></summary>" + "".join(_finding(f) for f in group) + "</details>"
        )
    return f"<div id='findings'>{''.join(out)}</div>"


def _grid(doc: dict) -> str:
    """Rows: the role a required service runs on (`from → to`); columns: services."""
    required = [c for c in doc["coverage"] if c["required"]]
    if not required:
        return "<p class='muted'>The matrix marks no service as required.</p>"
    roles = sorted({f"{c['from_role']} → {c['to_role']}" for c in required})
    services = [c["rule"] for c in required]
    cell = {(f"{c['from_role']} → {c['to_role']}", c["rule"]): c for c in required}
    head = "".join(
        f"<th title='{_e(c['service'])}'>{_e(c['rule'])}<br>"
        f"<span class='muted'>{_e(c['proto'])}/{_e(c['ports'])}</span></th>"
        for c in required
    )
    rows = []
    for role in roles:
        tds = []
        for service in services:
            c = cell.get((role, service))
            if c is None:
                tds.append("<td class='none'>—</td>")
            else:
                tds.append(
                    f"<td class='{_e(c['status'])}'>{_e(c['status'])}<br>"
                    f"{_e(c['established'])} established, {_e(c['failed'])} failed</td>"
                )
        rows.append(f"<tr><th>{_e(role)}</th>{''.join(tds)}</tr>")
    return f"<table id='coverage-grid'><tr><th>role</th>{head}</tr>" + "".join(rows) + "</table>"


def _coverage(doc: dict) -> str:
    rows = "".join(
        f"<tr><td>{_e(c['rule'])}</td><td>{_e(c['service'])}</td><td>{_e(c['proto'])}/"
        f"{_e(c['ports'])}</td><td>{_e(c['from_role'])} → {_e(c['to_role'])}</td>"
        f"<td>{'yes' if c['required'] else ''}</td><td>{_e(c['flows'])}</td>"
        f"<td>{_e(c['established'])}</td><td>{_e(c['failed'])}</td>"
        f"<td class='{_e(c['status']) or 'none'}'>{_e(c['status'])}</td></tr>"
        for c in doc["coverage"]
        if c["flows"] or c["required"]
    )
    return (
        "<table id='coverage'><tr><th>rule</th><th>service</th><th>ports</th>"
        "<th>roles</th><th>required</th><th>flows</th><th>established</th>"
        f"<th>failed</th><th>status</th></tr>{rows}</table>"
    )
