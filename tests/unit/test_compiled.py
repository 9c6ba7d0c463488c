"""Which compiled helpers this installation has, found on disk without importing
them, and what `--version` says either way."""

from __future__ import annotations

import importlib
import sys

import pytest

from portmatrix import compiled


def test_what_is_built_here_is_what_is_importable():
    state = compiled.active()
    assert list(state) == list(compiled.HELPERS.values())
    for module, name in compiled.HELPERS.items():
        dotted = "portmatrix." + module.replace("/", ".")
        try:
            importlib.import_module(dotted)
            importable = True
        except ImportError:
            importable = False
        assert state[name] is importable, name


def test_nothing_is_imported_to_find_out(monkeypatch):
    for module in compiled.HELPERS:
        monkeypatch.delitem(sys.modules, "portmatrix." + module.replace("/", "."), raising=False)
    compiled.active()
    assert not [m for m in compiled.HELPERS if "portmatrix." + m.replace("/", ".") in sys.modules]


@pytest.mark.parametrize(
    ("state", "said"),
    [
        (
            {"record walk": True, "decoder fast path": True},
            "compiled helpers active: record walk, decoder fast path",
        ),
        (
            {"record walk": True, "decoder fast path": False},
            "compiled helpers missing: decoder fast path — the numpy versions run instead "
            "(slower); reinstall with a C compiler to build them",
        ),
    ],
)
def test_describe(monkeypatch, state, said):
    monkeypatch.setattr(compiled, "active", lambda: state)
    assert compiled.describe() == said


def test_a_helper_missing_from_disk_is_inactive(monkeypatch, tmp_path):
    monkeypatch.setattr(compiled, "__file__", str(tmp_path / "compiled.py"))
    assert compiled.active() == dict.fromkeys(compiled.HELPERS.values(), False)
