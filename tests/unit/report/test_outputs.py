"""Several reports from one read: formats from names, checked before reading."""

from __future__ import annotations

import pytest

from portmatrix.errors import PortmatrixError
from portmatrix.report import CHECK_FORMATS
from portmatrix.report.outputs import (
    FORMAT_OF_SUFFIX,
    FORMATS,
    Output,
    check_outputs,
    plan_outputs,
)


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
