"""`rules show`: the compiled matrix as a table, JSON, CSV or Markdown."""

from __future__ import annotations

import csv
import io
import json
import textwrap

from portmatrix.policy.matrix import Matrix, Rule
from portmatrix.report import escape

COLUMNS = ("id", "proto", "ports", "from", "to", "initiator", "required", "service", "ref")


def _row(rule: Rule) -> dict[str, object]:
    ports = rule.ports_text or (
        "types " + ", ".join(map(str, rule.icmp_types)) if rule.icmp_types else "all"
    )
    return {
        "id": rule.id,
        "proto": rule.proto,
        "ports": ports,
        "from": rule.from_role,
        "to": rule.to_role,
        "initiator": rule.initiator,
        "required": rule.required,
        "service": rule.service,
        "ref": rule.ref,
    }


def render_table(matrix: Matrix, rules: list[Rule]) -> str:
    """One line per rule: id, proto/ports (long lists continue on the next lines),
    roles, required, service (shortened)."""
    rows = []
    show = escape.visible  # rule texts come from a file
    for rule in rules:
        arrow = "↔" if rule.initiator == "either" else "→"
        ports = textwrap.wrap(show(f"{rule.proto}/{_row(rule)['ports']}"), 22) or [""]
        service = show(rule.service)
        service = service if len(service) <= 30 else service[:29] + "…"
        rows.append(
            [
                show(rule.id),
                ports,
                show(f"{rule.from_role} {arrow} {rule.to_role}"),
                "yes" if rule.required else "",
                service,
            ]
        )
    heads = ["id", "proto/ports", "from → to", "req", "service"]
    widths = [
        max([len(h)] + [max(map(len, r[k])) if k == 1 else len(r[k]) for r in rows])
        for k, h in enumerate(heads)
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [
        show(
            f"{matrix.name}: {len(rules)} of {len(matrix.rules)} rules ({', '.join(matrix.files)})"
        ),
        "",
        line(heads),
        line(["─" * w for w in widths]),
    ]
    for r in rows:
        out.append(line([r[0], r[1][0], r[2], r[3], r[4]]))
        out += [line(["", more, "", "", ""]) for more in r[1][1:]]
    out += ["", "→ only `from` opens connections; ↔ either side may (initiator: either)"]
    return "\n".join(out) + "\n"


def render_json(matrix: Matrix, rules: list[Rule]) -> str:
    doc = {
        "name": matrix.name,
        "files": matrix.files,
        "roles": {
            r.name: {"description": r.description, "addresses": [e.text for e in r.entries]}
            for r in matrix.roles.values()
        },
        "rules": [
            _row(r) | {"description": r.description, "direction": r.direction} for r in rules
        ],
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def render_csv(matrix: Matrix, rules: list[Rule]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for rule in rules:
        writer.writerow({k: escape.csv_cell(v) for k, v in _row(rule).items()})
    return out.getvalue()


def render_markdown(matrix: Matrix, rules: list[Rule]) -> str:
    lines = [
        f"### {escape.markdown(matrix.name)}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for rule in rules:
        cells = [escape.markdown(str(v)) for v in _row(rule).values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


FORMATS = {
    "table": render_table,
    "json": render_json,
    "csv": render_csv,
    "markdown": render_markdown,
}
