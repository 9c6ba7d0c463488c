"""Fixtures shared by every test.

- `run_cli(*args, input=None)`: run `portmatrix ARGS`; exit_code, stdout, stderr.
- `site(name="small")`: write a named site of tests/support/site.py (matrix,
  inventory, exceptions) into tmp_path/NAME; its paths.
- `matrix(name="small")`: the path (text) of that site's matrix alone.
- `capture(name)`: the path of a capture by name: a sample of captures/
  ("thoughtspot-demo") or a shared real one ("PcapPlusPlus__DnsPackets.pcap").
- `check_packets(packets, exceptions=False, today=..., name=None, **options)`:
  `check` of IP packets (framed in Ethernet, written to a pcap) against the
  small site.
- `write_yaml(name, text)`: a dedented YAML file in tmp_path, for the tests whose
  subject is the file's text (line numbers, keys).
- `small_chunks`: capture readers read 100 bytes at a time.

Data lives in tests/support (importable as `support`: pytest's
`pythonpath = ["tests"]`); the fixtures only write it where a test can use it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from portmatrix.cli import main
from support.paths import capture_path
from support.site import Site, write_site

BEFORE_EXPIRY = dt.date(2025, 1, 1)  # the small site's backup-ssh active, old-snmp expired


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


@pytest.fixture
def site(tmp_path: Path) -> Callable[..., Site]:
    """`site(name="small")` writes the site `name` (tests/support/site.py SITES)
    into tmp_path/NAME and returns its paths (matrix, inventory, exceptions)."""

    def write(name: str = "small") -> Site:
        return write_site(tmp_path / name, name)

    return write


@pytest.fixture
def matrix(site) -> Callable[..., str]:
    """`matrix(name="small")`: the path of the site `name`'s matrix file, as text."""

    def path(name: str = "small") -> str:
        return str(site(name).matrix)

    return path


@pytest.fixture
def capture() -> Callable[[str], Path]:
    """`capture(name)`: the path of a sample capture (captures/, by stem or file
    name) or of a shared real capture (../shared/pcaps/, by file name)."""
    return capture_path


@pytest.fixture
def check_packets(site, tmp_path: Path):
    """`check_packets(packets, exceptions=False, today=BEFORE_EXPIRY, name=None,
    **options)`: the check result of these IP packets (framed in Ethernet, written
    to a pcap of their own, or to `name` under tmp_path) against the small site,
    its exceptions layered on when asked; `options` go to `run_check`."""
    from portmatrix.check import run_check
    from portmatrix.testing.captures import ether, write_pcap

    small = site("small")
    numbers = itertools.count(1)

    def check(packets, *, exceptions=False, today=BEFORE_EXPIRY, name=None, **options):
        path = tmp_path / (name or f"c{next(numbers)}.pcap")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_pcap(path, [ether(p) for p in packets])
        rules = [str(small.matrix)] + ([str(small.exceptions)] if exceptions else [])
        return run_check([str(path)], rules, str(small.inventory), today=today, **options)

    return check


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests that read the shared real captures (../shared/pcaps beside the
    repository: read there, never copied in) are skipped with the reason where
    that folder is missing — a fresh clone elsewhere — and fail in CI, which
    always has it, so they cannot quietly stop running there."""
    import inspect

    from support import tools
    from support.paths import SHARED_PCAPS

    if SHARED_PCAPS.is_dir():
        return
    function = getattr(item, "function", None)
    params = getattr(getattr(item, "callspec", None), "params", {})
    try:
        source = inspect.getsource(function) if function else ""
    except (OSError, TypeError):
        source = ""
    uses_shared = "SHARED" in source or any(
        str(SHARED_PCAPS) in str(value) for value in params.values()
    )
    if uses_shared:
        tools.missing(f"the shared captures are not at {SHARED_PCAPS}")
