"""How conformance tests find their tools (support/tools.py): a missing tool skips
the test outside CI and fails it in CI, so CI can never pass without running it."""

from __future__ import annotations

import shutil
import sys

import pytest

from support import tools


def test_a_tool_there_is_found():
    assert tools.program("sh", "any POSIX system") == shutil.which("sh")
    assert tools.module("json", "the standard library") is sys.modules["json"]


def test_a_missing_program_skips_outside_ci_and_fails_in_ci(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"tshark is not installed \(apt"):
        tools.program("tshark", "apt-get install tshark")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run this: tshark is not installed"):
        tools.program("tshark", "apt-get install tshark")


def test_a_missing_module_skips_outside_ci_and_fails_in_ci(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="distributed is missing"):
        tools.module("distributed", "pip install 'portmatrix[dask]'")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run this"):
        tools.module("distributed", "pip install 'portmatrix[dask]'")
