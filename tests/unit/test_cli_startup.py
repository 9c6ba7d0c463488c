"""Start-up stays light: importing the CLI loads nothing heavy, and --help works
from the installed command (no timing assertions: speed is for benchmarks/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("scapy", "pyshark", "pandas", "numpy", "rich", "yaml", "dask", "pyarrow")


def test_importing_the_cli_loads_nothing_heavy():
    code = f"import portmatrix.cli, sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_help_loads_nothing_heavy():
    code = (
        "import sys\n"
        "from portmatrix.cli import main\n"
        "for args in (['--help'], ['check', '--help'], ['flows', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, exc.code\n"
        f"loaded = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_installed_command_help():
    script = Path(sys.executable).with_name("portmatrix")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "portmatrix"]
    out = subprocess.run([*command, "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "Check real network traffic against an allowed port matrix." in out.stdout
    for name in ("check", "flows", "rules"):
        assert name in out.stdout


def test_check_help_lists_every_format():
    from portmatrix.report import CHECK_FORMATS

    out = subprocess.run(
        [sys.executable, "-m", "portmatrix", "check", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    flat = "".join(out.stdout.split())
    assert "|".join(CHECK_FORMATS) in flat


def test_the_clis_light_copy_of_the_verdicts_is_the_real_list():
    from portmatrix import cli
    from portmatrix.policy.lookup import VERDICTS

    assert cli._VERDICTS == VERDICTS
