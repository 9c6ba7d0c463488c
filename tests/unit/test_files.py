"""Output files: checked before anything is read, written whole or not at all."""

from __future__ import annotations

import os
import stat

import pytest

from portmatrix import files
from portmatrix.errors import PortmatrixError
from portmatrix.files import atomic, check_writable, write_text


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
