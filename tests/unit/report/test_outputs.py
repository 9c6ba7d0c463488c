"""Several reports from one read: formats from names, checked before reading,
rendered for the terminal or a file, and the one line saying what went where."""

from __future__ import annotations

import json

import pytest

from portmatrix.check import run_check
from portmatrix.errors import PortmatrixError
from portmatrix.files import staged
from portmatrix.report import CHECK_FORMATS
from portmatrix.report.outputs import (
    FORMAT_OF_SUFFIX,
    FORMATS,
    Output,
    check_outputs,
    plan_outputs,
    render,
    show_outputs,
    write_outputs,
    wrote_line,
)
from portmatrix.report.text import render_text
from support.paths import DEMO, DEMO_INVENTORY


def test_every_suffix_names_a_format_the_reports_have():
    assert set(FORMAT_OF_SUFFIX.values()) == set(FORMATS) == set(CHECK_FORMATS)


def test_formats_from_names_and_the_terminal():
    assert plan_outputs((), None) == [Output("-", "text")]
    assert plan_outputs((), "json") == [Output("-", "json")]
    assert plan_outputs(("r.HTML", "r.json", "-"), "csv") == [
        Output("r.HTML", "html"),
        Output("r.json", "json"),
        Output("-", "csv"),
    ]
    assert plan_outputs(("report",), "markdown") == [Output("report", "markdown")]


@pytest.mark.parametrize(
    ("paths", "fmt", "what"),
    [
        (("report",), None, "cannot tell the report format"),
        (("report", "r.json"), "json", "cannot tell the report format"),
        (("r.json", "r.json"), None, "given twice"),
    ],
)
def test_what_cannot_be_planned(paths, fmt, what):
    with pytest.raises(PortmatrixError, match=what) as err:
        plan_outputs(paths, fmt)
    assert err.value.where == "--output"


def test_outputs_are_checked_against_the_inputs(tmp_path):
    capture = tmp_path / "c.pcap"
    capture.write_bytes(b"x")
    with pytest.raises(PortmatrixError, match="is one of the inputs"):
        check_outputs([Output(str(capture), "json")], [str(capture)])
    check_outputs([Output("-", "text"), Output(str(tmp_path / "r.json"), "json")], [str(capture)])


@pytest.fixture(scope="module")
def demo():
    return run_check([str(DEMO)], ["thoughtspot"], str(DEMO_INVENTORY))


def test_outputs_are_checked_for_folders_too(tmp_path):
    with pytest.raises(PortmatrixError, match="does not exist"):
        check_outputs([Output(str(tmp_path / "no" / "r.json"), "json")], [])


def test_render_text_keeps_to_a_readable_width(demo):
    assert render(demo, "text", width=30) == render_text(demo, width=40)
    assert render(demo, "text", width=500) == render_text(demo, width=120)
    assert "\x1b[" in render(demo, "text", color=True) and "\x1b[" not in render(demo, "text")
    assert render(demo, "json") == CHECK_FORMATS["json"](demo)


def test_one_read_many_reports(demo, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    outputs = plan_outputs((str(tmp_path / "r.json"), "-", str(tmp_path / "r.csv")), None)
    with staged() as batch:
        written = write_outputs(demo, outputs, batch)
        assert not (tmp_path / "r.json").exists()  # staged: not there before the end
    show_outputs(demo, outputs)
    assert written == [outputs[0], outputs[2]]
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["flows"] == 40
    assert (tmp_path / "r.csv").read_text() == CHECK_FORMATS["csv"](demo)
    assert capsys.readouterr().out == render_text(demo)  # piped: no colour, 80 columns
    assert wrote_line(written, demo) == (
        f"portmatrix: wrote {tmp_path / 'r.json'} (json), {tmp_path / 'r.csv'} (csv): "
        "40 flows, 7 errors, 1 warning, 2 info"
    )
