"""The terminal report of a check: inputs, findings by severity, coverage of
required services, one summary line. Fits 80 columns; colour only on a TTY.
"""

from __future__ import annotations

import io
import textwrap

from portmatrix.report import escape, what_if_view
from portmatrix.report.document import document
from portmatrix.report.result import Result
from portmatrix.report.summary import made_by

STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
SHOWN = 25  # findings listed per severity; the machine formats carry all of them
MARK = {"error": "✗", "warning": "!", "info": "·"}


def _size(n: int | None) -> str:
    if n is None:
        return "stream"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


class _Writer:
    """A rich console writing into a buffer, with wrapped paragraphs."""

    def __init__(self, color: bool, width: int) -> None:
        from rich.console import Console

        self.buf = io.StringIO()
        self.width = width
        self.con = Console(
            file=self.buf,
            width=width,
            force_terminal=color,
            no_color=not color,
            highlight=False,
            emoji=False,
        )

    def para(self, text: str, indent: int, style: str = "", first: str = "") -> None:
        """Plain text wrapped to the width, wrapped lines keeping the indent."""
        from rich.markup import escape

        # A word longer than the line (a deep path) is cut: the report keeps its width.
        lines = textwrap.wrap(
            first + text, self.width - indent, break_on_hyphens=False, break_long_words=True
        ) or [""]
        for k, line in enumerate(lines):
            body = escape(line)
            if k == 0 and first:
                body = f"[{style or 'bold'}]{escape(first)}[/]" + escape(line[len(first) :])
            elif style and not first:
                body = f"[{style}]{body}[/]"
            self.con.print(" " * indent + body, soft_wrap=True)

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.buf.getvalue().split("\n"))


def render_text(result: Result, color: bool = False, width: int = 80) -> str:
    doc = escape.for_terminal(document(result))
    out = _Writer(color, width)
    _inputs(out, doc)
    parent = {f["id"]: f["severity"] for f in doc["findings"]}
    for severity in ("error", "warning", "info"):
        _findings(
            out,
            severity,
            [f for f in doc["findings"] if parent.get(f["part_of"], f["severity"]) == severity],
        )
    _required(out, [c for c in doc["coverage"] if c["required"]])
    _what_if(out, doc)
    _summary(out, doc["summary"])
    return out.text()


def _inputs(out: _Writer, doc: dict) -> None:
    """What was read: the matrix, each capture, the filters, the window, the counts."""
    s = doc["summary"]
    inputs = doc["inputs"]
    out.para(
        f"matrix {', '.join(inputs['rules'])}; inventory {inputs['inventory'] or 'none'}",
        0,
        first=f"portmatrix {doc['tool']['version']} {made_by(doc)} — ",
    )
    from portmatrix.sources.base import is_capture_format

    captured = [is_capture_format(cap["format"]) for cap in inputs["captures"]]
    records = bool(captured) and not any(captured)
    for cap, is_capture in zip(inputs["captures"], captured, strict=True):
        kind = ("capture ", "frames") if is_capture else ("flow log ", "records")
        out.para(
            f"{cap['path']}: {cap['format']}, {_size(cap['size'])}, {cap['frames']} {kind[1]}, "
            f"sha256 {cap['sha256']}",
            2,
            first=kind[0],
        )
    if inputs["filters"]:
        out.para(
            ", ".join(
                f"{k} {v if isinstance(v, str) else ' '.join(map(str, v))}"
                for k, v in inputs["filters"].items()
            ),
            2,
            first="filters ",
        )
    if s["time_window"]:
        out.para(f"{s['time_window']['first']} → {s['time_window']['last']}", 2, first="window  ")
    d = doc["decode"]
    if records:  # no packets were decoded: what was skipped is in the notices
        read = sum(cap["frames"] for cap in inputs["captures"])
        out.para(f"{read} records → {s['flows']} flows", 2)
    else:
        out.para(
            f"{s['packets']} packets → {s['flows']} flows; decoded IP {d['ip']}, non-IP "
            f"{sum(d['non_ip'].values())}, unsupported link "
            f"{sum(d['unsupported_link_type'].values())}, undecodable "
            f"{sum(d['undecodable'].values())}",
            2,
        )
    for notice in doc["notices"]:
        out.para(notice, 2, "yellow", first="notice: ")


def _findings(out: _Writer, severity: str, group: list[dict]) -> None:
    """The findings of one severity, the first SHOWN of them in full; a flow finding
    that a coverage finding rests on, under it."""
    from portmatrix.report.formats import apps_text, label, what, who

    if not group:
        return
    out.con.print()
    problems = sum(not f["part_of"] for f in group)
    out.con.print(f"[{STYLE[severity]}]{severity.upper()}S ({problems})[/]")
    for f in group[:SHOWN]:
        indent = 3 if f["part_of"] else 1
        if f["kind"] in ("coverage", "matrix"):
            where = f"rule {f['rule']}"
        else:
            where = f"{who(f, 'init')} → {who(f, 'resp')} {what(f)}"
        mark = "↳" if f["part_of"] else MARK[severity]
        out.para(f"{where}  {f['id']}", indent, STYLE[severity], first=f"{mark} {label(f)}  ")
        out.para(f["message"], indent + 2)
        if apps := apps_text(f):
            out.para(apps, indent + 2, first="application: ")
        if f["kind"] not in ("coverage", "matrix"):
            frames = f", frames {' '.join(f['frames'])}" if f["frames"] else ""
            out.para(
                f"{f['flows']} flow(s), {f['first_seen']} → {f['last_seen']}{frames}; "
                f"filter: {f['filter']}",
                indent + 2,
                "dim",
            )
        if f["action"] and not f["part_of"]:
            out.para(f["action"], indent + 2, first="→ ")
    if len(group) > SHOWN:
        by_verdict: dict[str, int] = {}
        for f in group[SHOWN:]:
            by_verdict[f["verdict"]] = by_verdict.get(f["verdict"], 0) + 1
        rest = ", ".join(f"{n} {v}" for v, n in sorted(by_verdict.items()))
        out.para(
            f"… and {len(group) - SHOWN} more ({rest}): every finding is in "
            "--format json, csv or markdown",
            1,
            "bold",
        )


def _required(out: _Writer, required: list[dict]) -> None:
    """The coverage of required rules, as a table."""
    from rich.markup import escape as markup
    from rich.table import Table

    if not required:
        return
    out.con.print()
    table = Table(
        title="Required services",
        title_justify="left",
        box=None,
        pad_edge=False,
        header_style="bold",
    )
    for col, justify in (
        ("rule", "left"),
        ("port", "left"),
        ("est.", "right"),
        ("failed", "right"),
        ("status", "left"),
    ):
        table.add_column(col, justify=justify, overflow="fold")
    for c in required:
        status = c["status"] if c["status"] == "ok" else f"[red]{c['status']}[/]"
        table.add_row(
            markup(c["rule"]),
            markup(f"{c['proto']}/{c['ports']}"),
            str(c["established"]),
            str(c["failed"]),
            status,
        )
    out.con.print(table)


def _what_if(out: _Writer, doc: dict) -> None:
    """What the --what-if matrix would change (nothing without --what-if)."""
    if "what_if" not in doc:
        return
    out.con.print()
    out.con.print(f"[bold]{what_if_view.title(doc)}[/]")
    lines = what_if_view.text_lines(doc)
    for severity, line in lines[:SHOWN]:
        out.para(line, 1, STYLE[severity], first=f"{MARK[severity]} ")
    if not lines:
        out.para("nothing would change", 1)
    elif len(lines) > SHOWN:
        out.para(f"… and {len(lines) - SHOWN} more: all of them in --format json", 1, "bold")


def _summary(out: _Writer, s: dict) -> None:
    """The last line: flows by verdict, findings by severity."""
    out.con.print()
    verdicts = " · ".join(f"{v} {k}" for k, v in s["verdicts"].items() if v)
    counts = s["findings"]
    known = f", {s['known_findings']} known (baseline)" if s["known_findings"] else ""
    out.para(
        f"{verdicts or 'no flows'} | {counts['error']} errors, {counts['warning']} "
        f"warnings, {counts['info']} info (each problem once){known}",
        0,
        "bold",
    )
