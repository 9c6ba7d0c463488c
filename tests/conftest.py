"""Fixtures shared by every test: run the CLI, write small YAML files."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from portmatrix.cli import main


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    """`run_cli(*args)` runs `portmatrix ARGS`; the result has exit_code, stdout, stderr.

    Exceptions that escape the CLI are raised, not turned into exit status 1, so
    a traceback can never pass for "findings".
    """
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str, str], Path]:
    """`write_yaml(name, text)` writes dedented `text` to tmp_path/name and returns the path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write
