"""`rules diff` as text, Markdown or JSON, all from one document.

Document fields: a, b (the files of each side), differ (bool), pairs (from,
to, proto, added, removed, became_required, no_longer_required as port text,
added_by / removed_by: the rules behind them, no_effect: a role holds no
address at the site), directions (roles, proto, ports, a, b: who may open
them in each), roles (role, change, a, b: fixed addresses and hostnames),
exceptions (proto, from, to, added, removed, expires: [a, b] or null).
"""

from __future__ import annotations

from portmatrix.policy.diff import MatrixDiff, ports_text
from portmatrix.textforms import json_text


def document(d: MatrixDiff) -> dict:
    return {
        "a": d.a,
        "b": d.b,
        "differ": d.differ,
        "pairs": [
            {
                "from": p.from_role,
                "to": p.to_role,
                "proto": p.proto,
                "added": ports_text(p.proto, p.added) if p.added else "",
                "removed": ports_text(p.proto, p.removed) if p.removed else "",
                "became_required": ports_text(p.proto, p.became_required)
                if p.became_required
                else "",
                "no_longer_required": ports_text(p.proto, p.no_longer_required)
                if p.no_longer_required
                else "",
                "added_by": p.added_by,
                "removed_by": p.removed_by,
                "no_effect": p.no_effect,
            }
            for p in d.pairs
        ],
        "directions": [
            {
                "roles": list(x.roles),
                "proto": x.proto,
                "ports": ports_text(x.proto, x.ports),
                "a": x.a,
                "b": x.b,
                "no_effect": x.no_effect,
            }
            for x in d.directions
        ],
        "roles": [{"role": r.role, "change": r.change, "a": r.a, "b": r.b} for r in d.roles],
        "exceptions": [
            {
                "proto": e.proto,
                "from": list(e.from_side),
                "to": list(e.to_side),
                "added": ports_text(e.proto, e.added) if e.added else "",
                "removed": ports_text(e.proto, e.removed) if e.removed else "",
                "expires": list(e.expires) if e.expires else None,
            }
            for e in d.exceptions
        ],
    }


def _pair_lines(doc: dict) -> list[str]:
    out = []
    for p in doc["pairs"]:
        head = f"{p['from']} → {p['to']} {p['proto']}" + (
            " (no effect: a role holds no address)" if p["no_effect"] else ""
        )
        if p["added"]:
            out.append(f"+ {head}: {p['added']} ({', '.join(p['added_by'])})")
        if p["removed"]:
            out.append(f"- {head}: {p['removed']} ({', '.join(p['removed_by'])})")
        if p["became_required"]:
            out.append(f"~ {head}: {p['became_required']} now required")
        if p["no_longer_required"]:
            out.append(f"~ {head}: {p['no_longer_required']} no longer required")
    for x in doc["directions"]:
        effect = " (no effect: a role holds no address)" if x["no_effect"] else ""
        out.append(
            f"~ {' ↔ '.join(x['roles'])} {x['proto']} {x['ports']}: opened {x['a']}, "
            f"now {x['b']}{effect}"
        )
    return out


def _other_lines(doc: dict) -> list[str]:
    out = []
    for r in doc["roles"]:
        sign = {"added": "+", "removed": "-", "changed": "~"}[r["change"]]
        fixed = (
            f": {', '.join(r['a']) or 'none'} → {', '.join(r['b']) or 'none'}"
            if r["change"] == "changed"
            else (f": {', '.join(r['a'] or r['b'])}" if r["a"] or r["b"] else "")
        )
        out.append(f"{sign} role {r['role']} {r['change']}{fixed}")
    for e in doc["exceptions"]:
        head = f"exception {', '.join(e['from'])} → {', '.join(e['to'])} {e['proto']}"
        if e["added"]:
            out.append(f"+ {head}: {e['added']}")
        if e["removed"]:
            out.append(f"- {head}: {e['removed']}")
        if e["expires"]:
            out.append(f"~ {head}: expires {e['expires'][0]} → {e['expires'][1]}")
    return out


def render_text(d: MatrixDiff) -> str:
    doc = document(d)
    title = f"rules diff: A = {', '.join(doc['a'])}; B = {', '.join(doc['b'])}"
    lines = _pair_lines(doc) + _other_lines(doc)
    tail = f"{len(lines)} difference(s)" if lines else "no difference: A and B allow the same"
    return "\n".join([title, *lines, tail]) + "\n"


def render_markdown(d: MatrixDiff) -> str:
    doc = document(d)

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        "## portmatrix rules diff",
        "",
        f"- A: {cell(', '.join(doc['a']))}",
        f"- B: {cell(', '.join(doc['b']))}",
        "",
    ]
    if not d.differ:
        return "\n".join([*lines, "A and B allow the same."]) + "\n"
    if doc["pairs"]:
        lines += [
            "| from | to | proto | added (B only) | removed (A only) | now required | "
            "no longer required |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {p['from']} | {p['to']} | {p['proto']} | {p['added']} | {p['removed']} | "
            f"{p['became_required']} | {p['no_longer_required']} |"
            for p in doc["pairs"]
        ]
        lines.append("")
    if doc["directions"]:
        lines += ["| roles | proto | ports | opened in A | opened in B |", "|---|---|---|---|---|"]
        lines += [
            f"| {' ↔ '.join(x['roles'])} | {x['proto']} | {x['ports']} | {x['a']} | {x['b']} |"
            for x in doc["directions"]
        ]
        lines.append("")
    lines += [f"- {cell(line)}" for line in _other_lines(doc)]
    return "\n".join(lines).rstrip("\n") + "\n"


def render_json(d: MatrixDiff) -> str:
    return json_text(document(d)) + "\n"


FORMATS = {"text": render_text, "markdown": render_markdown, "json": render_json}
