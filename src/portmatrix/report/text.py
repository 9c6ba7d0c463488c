"""The terminal report of a check: inputs, findings by severity, coverage of
required services, one summary line. Fits 80 columns; colour only on a TTY.
"""

from __future__ import annotations

import io
import textwrap

from portmatrix.report.document import document
from portmatrix.report.result import Result
from portmatrix.textforms import service_text

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


def _label(f: dict) -> str:
    """The verdict, or for allowed traffic that failed, what happened to it."""
    if f["verdict"] != "allowed":
        return f["verdict"]
    return "allowed but " + " and ".join(f["outcomes"])


def render_text(result: Result, color: bool = False, width: int = 80) -> str:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    doc = document(result)
    buf = io.StringIO()
    con = Console(
        file=buf,
        width=width,
        force_terminal=color,
        no_color=not color,
        highlight=False,
        emoji=False,
    )

    def para(text: str, indent: int, style: str = "", first: str = "") -> None:
        """Plain text wrapped to the width, wrapped lines keeping the indent."""
        # A word longer than the line (a deep path) is cut: the report keeps its width.
        lines = textwrap.wrap(
            first + text, width - indent, break_on_hyphens=False, break_long_words=True
        ) or [""]
        for k, line in enumerate(lines):
            body = escape(line)
            if k == 0 and first:
                body = f"[{style or 'bold'}]{escape(first)}[/]" + escape(line[len(first) :])
            elif style and not first:
                body = f"[{style}]{body}[/]"
            con.print(" " * indent + body, soft_wrap=True)

    s = doc["summary"]
    inputs = doc["inputs"]
    para(
        f"matrix {', '.join(inputs['rules'])}; inventory {inputs['inventory'] or 'none'}",
        0,
        first=f"portmatrix {doc['tool']['version']} check — ",
    )
    for cap in inputs["captures"]:
        para(
            f"{cap['path']}: {cap['format']}, {_size(cap['size'])}, {cap['frames']} frames, "
            f"sha256 {cap['sha256']}",
            2,
            first="capture ",
        )
    if inputs["filters"]:
        para(
            ", ".join(
                f"{k} {v if isinstance(v, str) else ' '.join(map(str, v))}"
                for k, v in inputs["filters"].items()
            ),
            2,
            first="filters ",
        )
    if s["time_window"]:
        para(f"{s['time_window']['first']} → {s['time_window']['last']}", 2, first="window  ")
    d = doc["decode"]
    para(
        f"{s['packets']} packets → {s['flows']} flows; decoded IP {d['ip']}, non-IP "
        f"{sum(d['non_ip'].values())}, unsupported link "
        f"{sum(d['unsupported_link_type'].values())}, undecodable "
        f"{sum(d['undecodable'].values())}",
        2,
    )
    for notice in doc["notices"]:
        para(notice, 2, "yellow", first="notice: ")

    for severity in ("error", "warning", "info"):
        group = [f for f in doc["findings"] if f["severity"] == severity]
        if not group:
            continue
        con.print()
        con.print(f"[{STYLE[severity]}]{severity.upper()}S ({len(group)})[/]")
        for f in group[:SHOWN]:
            where = (
                f"{f['initiator']} → {f['responder']} {service_text(f['proto'], f['port'])}"
                if f["kind"] == "flow"
                else f"rule {f['rule']}"
            )
            para(
                f"{where}  {f['id']}",
                1,
                STYLE[severity],
                first=f"{MARK[severity]} {_label(f)}  ",
            )
            para(f["message"], 3)
            if f["kind"] == "flow":
                para(
                    f"{f['flows']} flow(s), frames {' '.join(f['frames'])}; filter: {f['filter']}",
                    3,
                    "dim",
                )
        if len(group) > SHOWN:
            by_verdict: dict[str, int] = {}
            for f in group[SHOWN:]:
                by_verdict[f["verdict"]] = by_verdict.get(f["verdict"], 0) + 1
            rest = ", ".join(f"{n} {v}" for v, n in sorted(by_verdict.items()))
            para(
                f"… and {len(group) - SHOWN} more ({rest}): every finding is in "
                "--format json, csv or markdown",
                1,
                "bold",
            )

    required = [c for c in doc["coverage"] if c["required"]]
    if required:
        con.print()
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
                c["rule"],
                f"{c['proto']}/{c['ports']}",
                str(c["established"]),
                str(c["failed"]),
                status,
            )
        con.print(table)
    con.print()
    verdicts = " · ".join(f"{v} {k}" for k, v in s["verdicts"].items() if v)
    counts = s["findings"]
    known = f", {s['known_findings']} known (baseline)" if s["known_findings"] else ""
    para(
        f"{verdicts or 'no flows'} | {counts['error']} errors, {counts['warning']} "
        f"warnings, {counts['info']} info{known}",
        0,
        "bold",
    )
    return "\n".join(line.rstrip() for line in buf.getvalue().split("\n"))
