"""`rules show`: the compiled matrix as a table, JSON, CSV or Markdown."""

from __future__ import annotations

import csv
import io
import json

from portmatrix.matrix import Matrix, Rule

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
    from rich import box
    from rich.console import Console
    from rich.table import Table

    title = f"{matrix.name}: {len(rules)} of {len(matrix.rules)} rules"
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for col in ("id", "proto", "ports", "from → to", "req", "service"):
        table.add_column(col, overflow="fold")
    for rule in rules:
        row = _row(rule)
        arrow = "↔" if rule.initiator == "either" else "→"
        table.add_row(
            rule.id,
            rule.proto,
            str(row["ports"]),
            f"{rule.from_role} {arrow} {rule.to_role}",
            "yes" if rule.required else "",
            rule.service,
        )
    console = Console(file=io.StringIO(), width=100, force_terminal=False)
    console.print(table)
    legend = "→ only `from` opens connections; ↔ either side may (initiator: either)"
    return console.file.getvalue() + legend + "\n"


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
        writer.writerow(_row(rule))
    return out.getvalue()


def render_markdown(matrix: Matrix, rules: list[Rule]) -> str:
    lines = [
        f"### {matrix.name}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for rule in rules:
        cells = [str(v).replace("|", "\\|") for v in _row(rule).values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


FORMATS = {
    "table": render_table,
    "json": render_json,
    "csv": render_csv,
    "markdown": render_markdown,
}
