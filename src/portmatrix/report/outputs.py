"""Where a check (or watch) report goes: one or several outputs from one read.

`-o report.html -o report.json -o -` writes three reports of the same result
(as nmap's -oA spares a second pass over a large capture): the format of a
file comes from its extension, `-` is standard output in `--format` (text
by default). Every output is checked before anything is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from portmatrix.errors import PortmatrixError
from portmatrix.files import check_writable

FORMAT_OF_SUFFIX = {
    ".txt": "text",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".yaml": "suggestions",
    ".yml": "suggestions",
}
FORMATS = ("text", "json", "jsonl", "csv", "markdown", "html", "suggestions")


@dataclass(frozen=True)
class Output:
    path: str  # "-" for standard output
    fmt: str


def plan_outputs(
    paths: tuple[str, ...],
    fmt: str | None,
    suffixes: dict[str, str] = FORMAT_OF_SUFFIX,
    default: str = "text",
) -> list[Output]:
    """The outputs asked for, each with its format (from the name, else --format);
    one-line errors for a format that cannot be told or an output given twice.
    Nothing is opened: `check_outputs` does that once the inputs are known."""
    if not paths:
        return [Output("-", fmt or default)]
    outputs = []
    for path in paths:
        if path == "-":
            outputs.append(Output("-", fmt or default))
            continue
        known = suffixes.get(Path(path).suffix.lower())
        chosen = known or (fmt if len(paths) == 1 else None)
        if chosen is None:
            raise PortmatrixError(
                "cannot tell the report format from the file name",
                file=path,
                where="--output",
                hint=f"end it in {', '.join(sorted(set(suffixes)))}, or give --format",
            )
        outputs.append(Output(path, chosen))
    seen = [o.path for o in outputs]
    twice = sorted({p for p in seen if seen.count(p) > 1})
    if twice:
        raise PortmatrixError(
            "given twice", file=twice[0], where="--output", hint="give each output once"
        )
    return outputs


def check_outputs(outputs: list[Output], inputs: list[str]) -> None:
    """Each output file can be written, and is none of the inputs."""
    for output in outputs:
        if output.path != "-":
            check_writable(output.path, "--output", inputs)


def render(result, fmt: str, color: bool = False, width: int = 80) -> str:
    """A report of `result` in `fmt`; text in colour and to the width asked."""
    if fmt == "text":
        from portmatrix.report.text import render_text

        return render_text(result, color=color, width=max(40, min(width, 120)))
    from portmatrix.report import CHECK_FORMATS

    return CHECK_FORMATS[fmt](result)


def write_outputs(result, outputs: list[Output], batch) -> list[Output]:
    """Stage every report that goes to a file in `batch` (files.Staged: they all
    appear together, or none does); the outputs that went to files."""
    written = []
    for output in outputs:
        if output.path != "-":
            batch.write_text(output.path, render(result, output.fmt), "--output")
            written.append(output)
    return written


def show_outputs(result, outputs: list[Output]) -> None:
    """The reports that go to standard output, in colour on a terminal."""
    import sys

    from portmatrix import console

    for output in outputs:
        if output.path == "-":
            color, width = console.use_color(sys.stdout), console.width(sys.stdout)
            console.out(render(result, output.fmt, color, width))


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def wrote_line(written: list[Output], result) -> str:
    """The one stderr line saying what was written where, and the counts."""
    counts = result.severity_counts()
    files = ", ".join(f"{o.path} ({o.fmt})" for o in written)
    return (
        f"portmatrix: wrote {files}: {plural(result.traffic.flow_count, 'flow')}, "
        f"{plural(counts['error'], 'error')}, {plural(counts['warning'], 'warning')}, "
        f"{counts['info']} info"
    )
