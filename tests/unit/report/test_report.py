"""The registry of check report formats (`report.CHECK_FORMATS`): it is what
`--format` offers, every entry renders both kinds of result (an offline check
and a watch), and importing it loads no renderer."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from portmatrix.check import run_check
from portmatrix.decode import decode
from portmatrix.report import CHECK_FORMATS, formats
from portmatrix.sources.capture import Capture
from portmatrix.watch.watcher import Watcher
from support.paths import DEMO, DEMO_INVENTORY


@pytest.fixture(scope="module")
def checked():
    return run_check([str(DEMO)], ["thoughtspot"], str(DEMO_INVENTORY))


@pytest.fixture(scope="module")
def watched(checked):
    watcher = Watcher(checked.matrix, checked.inventory)
    capture = Capture(str(DEMO))
    for raw in capture.batches():
        watcher.add(*decode(raw))
    return watcher.finish([capture.info])


# What tells each format's output apart: a test per format, so a format added to
# the registry without one fails here (pip-audit's test_to_format_is_exhaustive).
def _json(text, result):
    assert json.loads(text)["summary"]["flows"] == result.traffic.flow_count


def _jsonl(text, result):
    assert len([json.loads(line) for line in text.splitlines()]) == len(result.findings)


def _csv(text, result):
    assert len(list(csv.DictReader(io.StringIO(text)))) == len(result.findings)


def _markdown(text, result):
    assert text.startswith("## portmatrix check — ")
    # Every error is a row; the summary counts each problem once.
    assert text.count("| error | ") == sum(f.severity == "error" for f in result.findings)
    counts = result.severity_counts()
    assert f"- {counts['error']} errors, {counts['warning']} warnings" in text


def _suggestions(text, result):
    import yaml

    assert text.startswith("# Suggested by portmatrix")
    doc = yaml.safe_load(text)
    suggested = [f for f in result.findings if f.fix is not None]
    assert len(doc.get("rules", [])) + len(doc.get("exceptions", [])) == len(suggested) > 0


def _html(text, result):
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")


def _text(text, result):
    assert text.startswith("portmatrix ")


SHAPES = {
    "text": _text,
    "json": _json,
    "jsonl": _jsonl,
    "csv": _csv,
    "markdown": _markdown,
    "html": _html,
    "suggestions": _suggestions,
}


def test_every_format_has_its_test():
    assert set(CHECK_FORMATS) == set(SHAPES)


def test_every_renderer_of_a_result_is_in_the_registry(checked):
    """formats' render_* functions all reachable by a --format name."""
    rendered = {name: render(checked) for name, render in CHECK_FORMATS.items()}
    for name in dir(formats):
        if name.startswith("render_"):
            out = getattr(formats, name)(checked)
            assert out in rendered.values(), f"{name} is not offered by --format"


@pytest.mark.parametrize("name", list(CHECK_FORMATS))
@pytest.mark.parametrize("kind", ["check", "watch"])
def test_every_format_renders_every_kind_of_result(request, name, kind):
    result = request.getfixturevalue({"check": "checked", "watch": "watched"}[kind])
    assert len(result.findings) == 12  # the same findings, watched or checked
    text = CHECK_FORMATS[name](result)
    assert isinstance(text, str) and text.endswith("\n")
    shown = [f for f in result.findings if name != "suggestions" or f.fix is not None]
    missing = [f.id for f in shown if f.id not in text]
    assert missing == [], f"{name} leaves out findings"
    SHAPES[name](text, result)


def test_importing_the_registry_loads_no_renderer():
    code = (
        "import sys, portmatrix.report as r\n"
        "print(sorted(m for m in sys.modules if m.startswith('portmatrix.report.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
