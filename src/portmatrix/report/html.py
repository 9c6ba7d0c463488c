"""A self-contained HTML report to attach to a ticket.

One file: inline CSS and SVG, no scripts, no fonts or images fetched. Every
string that comes from traffic or from the inputs (addresses, file names,
messages, rule texts) goes through `html.escape`.

Sections: inputs and summary; notices; a timeline of the findings over the
capture window; the findings with their Wireshark filters; the coverage of
required services as a role × service grid (established / failed / missing);
the top talkers behind the findings; the coverage of every rule.
"""

from __future__ import annotations

import datetime as dt

from portmatrix.report import escape
from portmatrix.report.document import document
from portmatrix.textforms import service_text

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;
 padding:0 1rem;color:#1d2330}
h1{font-size:1.5rem;margin:0 0 .3rem}h2{font-size:1.15rem;margin:2rem 0 .6rem;
 border-bottom:1px solid #d8dce5;padding-bottom:.2rem}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border:1px solid #d8dce5;padding:.3rem .45rem;text-align:left;vertical-align:top}
th{background:#f1f3f7}code{font-size:12px;word-break:break-all}
.cards{display:flex;flex-wrap:wrap;gap:.6rem}.card{border:1px solid #d8dce5;border-radius:6px;
 padding:.5rem .8rem;min-width:8rem}.card b{display:block;font-size:1.3rem}
.error{color:#b3001b}.warning{color:#9a5b00}.info{color:#20609f}
tr.error td:first-child{border-left:4px solid #b3001b}
tr.warning td:first-child{border-left:4px solid #d08700}
tr.info td:first-child{border-left:4px solid #3c84c9}
td.ok{background:#dff3e3}td.required-unreachable{background:#f9d2d6}
td.missing-required{background:#fbe7c2}td.none{background:#fafafa;color:#999}
.notice{background:#fff6db;border:1px solid #f0d68a;padding:.4rem .6rem;margin:.3rem 0}
.muted{color:#667}
"""
SEVERITY_ORDER = ("error", "warning", "info")


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
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>portmatrix check — {_e(inputs['matrix'])}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>portmatrix check — {_e(inputs['matrix'])}</h1>",
        f"<p class='muted'>portmatrix {_e(doc['tool']['version'])}; rules "
        f"{_e(', '.join(inputs['rules']))}; inventory {_e(inputs['inventory'] or 'none')}</p>",
        _inputs(doc),
        _cards(doc),
        "".join(f"<div class='notice'>{_e(n)}</div>" for n in doc["notices"]),
        "<h2>Timeline of findings</h2>",
        _timeline(doc),
        f"<h2>Findings ({len(doc['findings'])})</h2>",
        _findings(doc),
        "<h2>Required services</h2>",
        _grid(doc),
        "<h2>Top talkers behind the findings</h2>",
        _talkers(doc),
        "<h2>Coverage of every rule</h2>",
        _coverage(doc),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


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
        + "".join(f"<div class='card'><b>{_e(n)}</b>{_e(label)}</div>" for label, n in cards)
        + "</div>"
    )


def _timeline(doc: dict) -> str:
    window = doc["summary"]["time_window"] or {}
    start, end = _seconds(window.get("first")), _seconds(window.get("last"))
    flows = [
        f
        for f in doc["findings"]
        if _seconds(f["first_seen"]) is not None and _seconds(f["last_seen"]) is not None
    ]
    if start is None or end is None or not flows:
        return "<p class='muted'>No finding with a time.</p>"
    span = max(end - start, 1e-6)
    width, lane, left = 900, 28, 90
    height = lane * len(SEVERITY_ORDER) + 30
    marks = []
    for i, sev in enumerate(SEVERITY_ORDER):
        y = 10 + i * lane
        marks.append(
            f"<text x='0' y='{y + 15}' class='{sev}'>{sev}</text>"
            f"<line x1='{left}' y1='{y + 11}' x2='{left + width}' y2='{y + 11}' "
            "stroke='#e3e6ec'/>"
        )
        for f in (f for f in flows if f["severity"] == sev):
            x1 = left + width * (_seconds(f["first_seen"]) - start) / span
            x2 = left + width * (_seconds(f["last_seen"]) - start) / span
            colour = {"error": "#b3001b", "warning": "#d08700", "info": "#3c84c9"}[sev]
            marks.append(
                f"<rect x='{x1:.1f}' y='{y + 4}' width='{max(x2 - x1, 3):.1f}' "
                f"height='14' fill='{colour}' opacity='.75'><title>"
                f"{_e(f['verdict'])} {_e(f['initiator'])} → {_e(f['responder'])} "
                f"{_e(service_text(f['proto'], f['port']))}</title></rect>"
            )
    axis = (
        f"<text x='{left}' y='{height - 4}' class='muted'>{_e(window['first'])}</text>"
        f"<text x='{left + width}' y='{height - 4}' text-anchor='end' class='muted'>"
        f"{_e(window['last'])}</text>"
    )
    return (
        f"<svg id='timeline' viewBox='0 0 {left + width + 10} {height}' width='100%' "
        f"role='img' aria-label='findings over time' font-size='12'>"
        + "".join(marks)
        + axis
        + "</svg>"
    )


def _who(address: str, roles: list[str]) -> str:
    return f"{_e(address)} <span class='muted'>({_e(', '.join(roles) or 'no role')})</span>"


def _findings(doc: dict) -> str:
    if not doc["findings"]:
        return "<p>No findings.</p>"
    rows = []
    for f in doc["findings"]:
        where = (
            f"{_who(f['initiator'], f['initiator_roles'])} → "
            f"{_who(f['responder'], f['responder_roles'])}"
            if f["kind"] == "flow"
            else f"rule {_e(f['rule'])}"
        )
        service = _e(service_text(f["proto"], f["port"]))
        outcomes = ", ".join(f"{_e(k)} {_e(v)}" for k, v in f["outcomes"].items())
        rows.append(
            f"<tr class='{_e(f['severity'])}'><td class='{_e(f['severity'])}'>"
            f"{_e(f['severity'])}</td><td>{_e(f['verdict'])}</td><td>{where}</td>"
            f"<td>{service}</td><td>{_e(f['flows'])}</td><td>{outcomes}</td>"
            f"<td>{_e(f['message'])}<br><code>{_e(f['filter'])}</code></td>"
            f"<td><code>{_e(f['id'])}</code></td></tr>"
        )
    return (
        "<table id='findings'><tr><th>severity</th><th>verdict</th><th>who</th>"
        "<th>service</th><th>flows</th><th>outcome</th><th>what, and a Wireshark "
        "filter</th><th>id</th></tr>" + "".join(rows) + "</table>"
    )


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


def _talkers(doc: dict) -> str:
    talk: dict[str, list[int]] = {}
    for f in doc["findings"]:
        if f["kind"] != "flow":
            continue
        entry = talk.setdefault(f["initiator"], [0, 0, 0])
        entry[0] += 1
        entry[1] += f["flows"]
        entry[2] += 1 if f["severity"] == "error" else 0
    if not talk:
        return "<p class='muted'>No flow findings.</p>"
    top = sorted(talk.items(), key=lambda kv: (-kv[1][2], -kv[1][0], -kv[1][1], kv[0]))[:10]
    rows = "".join(
        f"<tr><td>{_e(host)}</td><td>{n}</td><td>{errors}</td><td>{flows}</td></tr>"
        for host, (n, flows, errors) in top
    )
    return (
        "<table id='talkers'><tr><th>initiator</th><th>findings</th><th>errors</th>"
        f"<th>flows</th></tr>{rows}</table>"
    )


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
