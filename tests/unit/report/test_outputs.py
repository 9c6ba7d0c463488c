"""Where a report goes: several outputs from one read, each format told by its
file's suffix (or --format), every output checked before anything is read, and
the one line saying what was written."""

from __future__ import annotations

import json

import pytest

from portmatrix.check import run_check
from portmatrix.errors import PortmatrixError
from portmatrix.report import CHECK_FORMATS
from portmatrix.report.outputs import (
    FORMAT_OF_SUFFIX,
    FORMATS,
    Output,
    plan_outputs,
    render,
    write_outputs,
    wrote_line,
)
from portmatrix.report.text import render_text
from support.paths import DEMO, DEMO_INVENTORY


@pytest.fixture(scope="module")
def demo():
    return run_check([str(DEMO)], ["thoughtspot"], str(DEMO_INVENTORY))


def test_every_format_is_a_check_format_and_has_a_suffix():
    assert set(FORMATS) == set(CHECK_FORMATS) == set(FORMAT_OF_SUFFIX.values())


def test_standard_output_alone_by_default(tmp_path):
    assert plan_outputs((), None, []) == [Output("-", "text")]
    assert plan_outputs((), "json", []) == [Output("-", "json")]
    assert plan_outputs(("-",), "csv", []) == [Output("-", "csv")]


def test_formats_come_from_suffixes(tmp_path):
    paths = (str(tmp_path / "a.HTML"), str(tmp_path / "b.ndjson"), "-", str(tmp_path / "c.md"))
    assert plan_outputs(paths, "json", []) == [
        Output(paths[0], "html"),
        Output(paths[1], "jsonl"),
        Output("-", "json"),  # --format is for standard output
        Output(paths[3], "markdown"),
    ]


def test_an_unknown_suffix_takes_format_only_when_it_is_the_only_output(tmp_path):
    report = str(tmp_path / "report.out")
    assert plan_outputs((report,), "csv", []) == [Output(report, "csv")]
    with pytest.raises(PortmatrixError, match="cannot tell the report format") as err:
        plan_outputs((report, str(tmp_path / "b.json")), "csv", [])
    assert err.value.where == "--output" and ".html" in err.value.hint
    with pytest.raises(PortmatrixError, match="cannot tell the report format"):
        plan_outputs((report,), None, [])


def test_outputs_are_checked_before_reading(tmp_path):
    capture = tmp_path / "c.json"  # an input that happens to end in .json
    capture.write_text("{}")
    with pytest.raises(PortmatrixError, match="is one of the inputs"):
        plan_outputs((str(capture),), None, [str(capture)])
    with pytest.raises(PortmatrixError, match="does not exist"):
        plan_outputs((str(tmp_path / "no" / "r.json"),), None, [])
    twice = str(tmp_path / "r.json")
    with pytest.raises(PortmatrixError, match="given twice") as err:
        plan_outputs((twice, "-", twice), None, [])
    assert err.value.file == twice


def test_render_text_keeps_to_a_readable_width(demo):
    assert render(demo, "text", width=40) == render_text(demo, width=80)
    assert render(demo, "text", width=500) == render_text(demo, width=120)
    assert "\x1b[" in render(demo, "text", color=True) and "\x1b[" not in render(demo, "text")
    assert render(demo, "json") == CHECK_FORMATS["json"](demo)


def test_one_read_many_reports(demo, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    outputs = plan_outputs((str(tmp_path / "r.json"), "-", str(tmp_path / "r.csv")), None, [])
    written = write_outputs(demo, outputs)
    assert written == [outputs[0], outputs[2]]
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["flows"] == 40
    assert (tmp_path / "r.csv").read_text() == CHECK_FORMATS["csv"](demo)
    assert capsys.readouterr().out == render_text(demo)  # piped: no colour, 80 columns
    assert wrote_line(written, demo) == (
        f"portmatrix: wrote {tmp_path / 'r.json'} (json), {tmp_path / 'r.csv'} (csv): "
        "40 flows, 9 errors, 1 warnings, 2 info"
    )
