"""Fixtures shared by every test: run the CLI, write small YAML files, read
captures in tiny chunks."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from portmatrix.cli import main


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    """`run_cli(*args, input=None)` runs `portmatrix ARGS`; the result has exit_code,
    stdout, stderr. `input` (bytes or text) is what the command reads on stdin.

    Exceptions that escape the CLI are raised, not turned into exit status 1, so
    a traceback can never pass for "findings".
    """
    runner = CliRunner()

    def run(*args: str, input: bytes | str | None = None) -> Result:
        return runner.invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)

    return run


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str, str], Path]:
    """`write_yaml(name, text)` writes dedented `text` to tmp_path/name and returns the path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Capture readers read 100 bytes at a time (instead of megabytes), so records,
    blocks and IP fragments straddle chunk and batch boundaries. Returns the size."""
    import importlib

    size = 100
    for name in ("chunks", "pcap", "pcapng"):
        module = importlib.import_module(f"portmatrix.sources.{name}")
        if hasattr(module, "CHUNK"):  # readers that imported the name keep their own copy
            monkeypatch.setattr(module, "CHUNK", size)
    return size
