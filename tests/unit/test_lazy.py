"""Optional heavy modules: imported on first use, or a PortmatrixError that says
which extra to install."""

from __future__ import annotations

import sys

import pytest

from portmatrix.errors import ExitCode, PortmatrixError
from portmatrix.lazy import require


def test_present_module_is_returned():
    import json

    assert require("json", extra="unused") is json


def test_missing_module_names_the_extra():
    with pytest.raises(PortmatrixError) as caught:
        require("portmatrix_no_such_module", extra="dask")
    error = caught.value
    assert "portmatrix_no_such_module" in error.what
    assert error.hint == "pip install 'portmatrix[dask]'"
    assert str(error).endswith("— pip install 'portmatrix[dask]'")
    assert "Traceback" not in str(error)


def test_module_that_fails_to_import(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    with pytest.raises(PortmatrixError, match=r"'pyarrow'.*pip install 'portmatrix\[parquet\]'"):
        require("pyarrow", extra="parquet")


def test_missing_extra_through_the_cli_exits_2(run_cli, monkeypatch, tmp_path):
    from portmatrix.testing.captures import ether, tcp_session, write_pcap

    capture = write_pcap(
        tmp_path / "c.pcap", [ether(p) for p in tcp_session("10.0.0.1", "10.0.0.2", 1, 2)]
    )
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    out = tmp_path / "flows.parquet"
    result = run_cli("check", capture, "--rules", "thoughtspot", "--flows", out)
    assert result.exit_code == ExitCode.BAD_INPUT
    assert result.stderr.splitlines() == [
        "portmatrix: error: this needs the optional package 'pyarrow' — "
        "pip install 'portmatrix[parquet]'"
    ]
