"""Outputs never destroy: an output that is one of the inputs (by device and inode,
not by name) is refused before anything is read, and every output is written
whole or not at all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from portmatrix.errors import PortmatrixError
from portmatrix.files import atomic, check_writable, write_text
from portmatrix.testing.captures import ether, tcp_session, write_pcap
from support.site import N1, USER, write_site


@pytest.fixture
def capture(tmp_path) -> Path:
    """A capture named like a report (the format is told by the content): every
    output option can name it."""
    return write_pcap(tmp_path / "cap.json", [ether(p) for p in tcp_session(USER, N1, 40000, 22)])


def same_file_names(capture: Path) -> dict[str, Path]:
    """Other names of the capture: a hard link, a symbolic link, a path through '..'."""
    hard = capture.with_name("hard.json")
    os.link(capture, hard)
    soft = capture.with_name("soft.json")
    soft.symlink_to(capture.name)
    return {
        "same": capture,
        "hard": hard,
        "soft": soft,
        "dots": capture.parent / ".." / capture.parent.name / capture.name,
    }


@pytest.mark.parametrize("alias", ["same", "hard", "soft", "dots"])
def test_an_output_that_is_an_input_is_refused_for_every_command(run_cli, tmp_path, capture, alias):
    site = write_site(tmp_path)
    out = same_file_names(capture)[alias]
    before = capture.read_bytes()
    rules = ["--rules", site.matrix, "--inventory", site.inventory]
    commands = [
        ["check", capture, *rules, "-o", out],
        ["check", capture, *rules, "--flows", out],
        ["flows", capture, "--output", out],
        ["evidence", capture, "--flow", f"tcp {USER}:40000 -> {N1}:22", "-o", out],
    ]
    for args in commands:
        result = run_cli(*args)
        assert result.exit_code == 2, (args, result.stderr)
        assert "is one of the inputs: writing it would destroy it" in result.stderr
        assert capture.read_bytes() == before


def test_the_matrix_and_inventory_are_inputs_too(run_cli, tmp_path, capture):
    site = write_site(tmp_path)
    matrix, inventory = site.matrix.read_text(), site.inventory.read_text()
    rules = ["--rules", site.matrix, "--inventory", site.inventory]
    for out in (site.matrix, site.inventory):
        for args in (
            ["check", capture, *rules, "--format", "json", "-o", out],
            ["evidence", capture, *rules, "--verdict", "allowed", "-o", out],
        ):
            result = run_cli(*args)
            assert result.exit_code == 2 and "is one of the inputs" in result.stderr, args
    assert (site.matrix.read_text(), site.inventory.read_text()) == (matrix, inventory)


def test_the_flow_export_and_a_report_may_not_be_one_file(run_cli, tmp_path, capture):
    site = write_site(tmp_path)
    out = tmp_path / "both.csv"
    args = ["check", capture, "--rules", site.matrix, "--inventory", site.inventory]
    result = run_cli(*args, "-o", out, "--flows", out)
    assert result.exit_code == 2 and "is also a report (--output)" in result.stderr
    assert not out.exists()


def test_a_baseline_may_be_replaced_by_the_new_report(run_cli, tmp_path, capture):
    site = write_site(tmp_path)
    report = tmp_path / "baseline.json"
    args = ["check", capture, "--rules", site.matrix, "--inventory", site.inventory]
    assert run_cli(*args, "-o", report).exit_code in (0, 1)
    again = run_cli(*args, "--baseline", report, "-o", report)
    assert again.exit_code == 0, again.stderr
    assert '"known_findings": ' in report.read_text()


def test_checks_before_reading(tmp_path):
    with pytest.raises(PortmatrixError, match="does not exist"):
        check_writable(str(tmp_path / "no" / "r.json"), "--output")
    with pytest.raises(PortmatrixError, match="is a folder"):
        check_writable(str(tmp_path), "--output")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root writes anywhere
            pytest.skip("running as root")
        with pytest.raises(PortmatrixError, match="no permission"):
            check_writable(str(locked / "r.json"), "--output")
    finally:
        locked.chmod(0o700)


def test_an_error_half_way_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "report.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic(str(path)) as fh:
        fh.write("half of the new")
        raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    write_text(str(path), "new")
    assert path.read_text() == "new"
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_process_killed_while_writing_leaves_the_old_file(tmp_path):
    path = tmp_path / "evidence.pcapng"
    path.write_bytes(b"old")
    script = (
        "import sys, time\n"
        "from portmatrix.files import atomic\n"
        f"with atomic({str(path)!r}, 'wb') as fh:\n"
        "    fh.write(b'x' * 1000); fh.flush(); print('writing', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert path.read_bytes() == b"old"  # a .part file may stay behind, never half a report
