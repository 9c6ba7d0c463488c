"""Output files: checked before anything is read, written whole or not at all;
an output that is one of the inputs (captures, matrices, inventory; the same
file by device and inode, not by name) is refused by every command."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from portmatrix import files
from portmatrix.errors import PortmatrixError
from portmatrix.files import atomic, check_writable, write_text
from portmatrix.testing.captures import ether, tcp_session, write_pcap
from support.site import N1, USER, write_site


def test_a_missing_folder_names_the_fix(tmp_path):
    with pytest.raises(PortmatrixError) as err:
        check_writable(str(tmp_path / "no" / "r.json"), "-o")
    assert err.value.where == "-o" and "mkdir -p" in err.value.hint


def test_a_folder_is_not_a_file(tmp_path):
    with pytest.raises(PortmatrixError, match="is a folder"):
        check_writable(str(tmp_path), "-o")


def test_an_input_is_never_an_output_by_any_name(tmp_path):
    capture = tmp_path / "c.pcap"
    capture.write_bytes(b"x")
    os.link(capture, tmp_path / "hard.pcap")
    (tmp_path / "soft.pcap").symlink_to(capture)
    for name in ("c.pcap", "./c.pcap", "hard.pcap", "soft.pcap"):
        with pytest.raises(PortmatrixError, match="is one of the inputs"):
            check_writable(str(tmp_path / name), "-o", [str(capture)])
    check_writable(str(tmp_path / "other.json"), "-o", [str(capture), "-"])


def test_a_failed_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic(str(target)) as fh:
        fh.write("half of the new")
        raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary left


def test_a_complete_write_replaces_it_with_the_usual_permissions(tmp_path):
    target = tmp_path / "r.json"
    write_text(str(target), "new")
    assert target.read_text() == "new"
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_writable_path_passes(tmp_path, monkeypatch):
    check_writable(str(tmp_path / "new.json"), "--output")
    (tmp_path / "old.json").write_text("x")
    check_writable(str(tmp_path / "old.json"), "--output")
    monkeypatch.chdir(tmp_path)
    check_writable("here.json", "--output")  # no folder given: the current one


def test_no_permission(tmp_path, monkeypatch):
    # The tests may run as root, whom the permission bits do not stop: ask os.access.
    denied = tmp_path / "locked"
    denied.mkdir()
    real = os.access
    monkeypatch.setattr(files.os, "access", lambda p, mode: real(p, mode) and p != denied)
    with pytest.raises(PortmatrixError, match="no permission to write here") as err:
        check_writable(str(denied / "r.json"), "--flows")
    assert err.value.where == "--flows" and err.value.hint == "choose a folder you can write to"


def test_the_old_file_stays_until_the_new_one_is_whole(tmp_path):
    path = tmp_path / "report.json"
    path.write_text("old")
    with atomic(str(path)) as fh:
        fh.write("new\n")
        fh.flush()
        assert path.read_text() == "old"  # not yet
    assert path.read_text() == "new\n"


def test_binary_files_and_another_umask(tmp_path):
    mask = os.umask(0o027)
    try:
        with atomic(str(tmp_path / "ev.pcapng"), "wb") as fh:
            fh.write(b"\x0a\x0d\x0d\x0a")
    finally:
        os.umask(mask)
    path = tmp_path / "ev.pcapng"
    assert path.read_bytes() == b"\x0a\x0d\x0d\x0a"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0666 less the umask, as open() does


def test_write_text_keeps_the_text_and_fails_in_one_line(tmp_path):
    write_text(str(tmp_path / "r.txt"), "héllo\r\n")
    assert (tmp_path / "r.txt").read_bytes() == "héllo\r\n".encode()  # no newline translation
    with pytest.raises(PortmatrixError, match="cannot write") as err:
        write_text(str(tmp_path / "missing" / "r.txt"), "x", "--jsonl")
    assert err.value.where == "--jsonl"


def captures(folder: Path) -> dict[str, Path]:
    """The same capture named like a report (the format is told by the content), so
    every report option can name it, and like evidence (which must be .pcapng)."""
    packets = [ether(p) for p in tcp_session(USER, N1, 40000, 22)]
    return {ext: write_pcap(folder / f"cap.{ext}", packets) for ext in ("json", "pcapng")}


def other_names(capture: Path) -> dict[str, Path]:
    """Other names of a file: a hard link, a symbolic link, a path through '..'."""
    hard = capture.with_name("hard" + capture.suffix)
    os.link(capture, hard)
    soft = capture.with_name("soft" + capture.suffix)
    soft.symlink_to(capture.name)
    dots = capture.parent / ".." / capture.parent.name / capture.name
    return {"same": capture, "hard": hard, "soft": soft, "dots": dots}


@pytest.mark.parametrize("alias", ["same", "hard", "soft", "dots"])
def test_an_output_that_is_an_input_is_refused_for_every_command(run_cli, tmp_path, alias):
    site = write_site(tmp_path)
    caps = captures(tmp_path)
    report, evidence = other_names(caps["json"])[alias], other_names(caps["pcapng"])[alias]
    before = {ext: cap.read_bytes() for ext, cap in caps.items()}
    rules = ["--rules", site.matrix, "--inventory", site.inventory]
    flow = f"tcp {USER}:40000 -> {N1}:22"
    commands = [
        ["check", caps["json"], *rules, "-o", report],
        ["check", caps["json"], *rules, "--flows", report],
        ["flows", caps["json"], "--output", report],
        ["evidence", caps["pcapng"], "--flow", flow, "-o", evidence],
    ]
    for args in commands:
        result = run_cli(*args)
        assert result.exit_code == 2, (args, result.stderr)
        assert "is one of the inputs: writing it would destroy it" in result.stderr, args
    assert {ext: cap.read_bytes() for ext, cap in caps.items()} == before


def test_the_matrix_and_inventory_are_inputs_too(run_cli, tmp_path):
    site = write_site(tmp_path)
    capture = captures(tmp_path)["pcapng"]
    matrix, inventory = site.matrix.read_text(), site.inventory.read_text()
    rules = ["--rules", site.matrix, "--inventory", site.inventory]
    for out in (site.matrix, site.inventory):
        result = run_cli("check", capture, *rules, "--format", "json", "-o", out)
        assert result.exit_code == 2 and "is one of the inputs" in result.stderr, out
    assert (site.matrix.read_text(), site.inventory.read_text()) == (matrix, inventory)


def test_the_flow_export_and_a_report_may_not_be_one_file(run_cli, tmp_path):
    site = write_site(tmp_path)
    out = tmp_path / "both.csv"
    args = ["check", captures(tmp_path)["pcapng"], "--rules", site.matrix]
    result = run_cli(*args, "--inventory", site.inventory, "-o", out, "--flows", out)
    assert result.exit_code == 2 and "is also a report (--output)" in result.stderr
    assert not out.exists()


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


def test_a_device_or_fifo_is_written_in_place_never_replaced(tmp_path):
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    write_text(str(fifo), "report\n")
    reader.join(timeout=10)
    assert got == ["report\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temporary left


@pytest.mark.parametrize("durable", [False, True])
def test_a_durable_file_and_its_folder_reach_the_disk_before_it_counts(
    tmp_path, monkeypatch, durable
):
    synced = []
    sync = os.fsync

    def recording(fd):
        mode = os.fstat(fd).st_mode
        synced.append(("folder" if stat.S_ISDIR(mode) else "file", (tmp_path / "out").exists()))
        sync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    with files.staged(durable=durable) as batch:
        batch.write_text(str(tmp_path / "out"), "new")
    assert (tmp_path / "out").read_text() == "new"
    # the file before its rename (the target not there yet), the folder after
    assert synced == ([("file", False), ("folder", True)] if durable else [])
