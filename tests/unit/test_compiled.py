"""`--version` says whether the compiled helpers are installed."""

from __future__ import annotations

import importlib.util
import sys

from portmatrix import compiled


def test_active_matches_what_imports():
    state = compiled.active()
    assert set(state) == set(compiled.HELPERS.values())
    for module, name in compiled.HELPERS.items():
        dotted = "portmatrix." + module.replace("/", ".")
        assert state[name] == (importlib.util.find_spec(dotted) is not None), name


def test_describe_names_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(compiled, "__file__", str(tmp_path / "compiled.py"))
    text = compiled.describe()
    assert text.startswith("compiled helpers missing: record walk, decoder fast path")
    assert "C compiler" in text


def test_nothing_is_imported_to_find_out(monkeypatch):
    dotted = ["portmatrix." + module.replace("/", ".") for module in compiled.HELPERS]
    for name in dotted:
        monkeypatch.delitem(sys.modules, name, raising=False)
    compiled.active()
    assert not [name for name in dotted if name in sys.modules]


def test_describe_when_all_are_there(monkeypatch):
    monkeypatch.setattr(compiled, "active", lambda: dict.fromkeys(compiled.HELPERS.values(), True))
    assert compiled.describe() == (
        "compiled helpers active: record walk, decoder fast path, flow table, AWS flow-log reader"
    )
