"""`portmatrix flows`: the flow table as a text table, CSV, JSON or JSON lines.

Every format ends with (or includes) the decode buckets, so every frame read
is accounted for, and any notice about the capture (cut short, drops, one-way).
"""

from __future__ import annotations

import csv
import io
import json

from portmatrix.report import escape
from portmatrix.report.flow_rows import COLUMNS, rows
from portmatrix.report.summary import decode_document, decode_summary, inputs_summary
from portmatrix.textforms import json_text

COLUMN_SET = set(COLUMNS)


def render_table(columns: dict[str, list], traffic) -> str:
    shown = (
        "proto",
        "initiator",
        "initiator_port",
        "responder",
        "responder_port",
        "packets_fwd",
        "packets_rev",
        "outcome",
        "initiator_by",
    )
    heads = ("proto", "initiator", "port", "responder", "port", "pkts>", "pkts<", "outcome", "by")
    extra = [c for c in columns if c not in COLUMN_SET]
    shown += tuple(extra)
    heads += tuple(extra)
    cells = [[escape.visible(str(v)) for v in columns[c]] for c in shown]
    widths = [max([len(h)] + [len(x) for x in col]) for h, col in zip(heads, cells, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip()]
    for values in zip(*cells, strict=True):
        lines.append("  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip())
    lines.append("")
    lines += [escape.visible(line) for line in summary_lines(traffic, len(columns["proto"]))]
    return "\n".join(lines) + "\n"


def summary_lines(traffic, flows: int) -> list[str]:
    out = [f"{flows} flows from {traffic.packets} frames in {len(traffic.captures)} file(s)"]
    out += [f"  {line}" for line in decode_summary(traffic.counts)]
    if traffic.filters:
        out.append(f"filters: {traffic.filters.describe()}")
    out += [f"notice: {n}" for n in traffic.notices()]
    return out


def render_csv(columns: dict[str, list], traffic) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(escape.csv_row(row) for row in zip(*columns.values(), strict=True))
    return out.getvalue()


def render_json(columns: dict[str, list], traffic) -> str:
    doc = {
        "filters": traffic.filters.describe() if traffic.filters else {},
        "inputs": inputs_summary(traffic),
        "flows": rows(columns),
        "decode": decode_document(traffic.counts),
        "notices": traffic.notices(),
    }
    return escape.json_text(json_text(doc)) + "\n"


def render_jsonl(columns: dict[str, list], traffic) -> str:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows(columns))


FORMATS = {"table": render_table, "csv": render_csv, "json": render_json, "jsonl": render_jsonl}
