"""Output files: checked before any input is read (folder, permission, not an
input), and written whole or not at all."""

from __future__ import annotations

import os
import stat

import pytest

from portmatrix import files
from portmatrix.errors import PortmatrixError
from portmatrix.files import atomic, check_writable, write_text


def test_a_writable_path_passes(tmp_path, monkeypatch):
    check_writable(str(tmp_path / "new.json"), "--output")
    (tmp_path / "old.json").write_text("x")
    check_writable(str(tmp_path / "old.json"), "--output")
    monkeypatch.chdir(tmp_path)
    check_writable("here.json", "--output")  # no folder given: the current one


@pytest.mark.parametrize(
    ("name", "what", "hint"),
    [
        (".", "is a folder", "give a file name inside it"),
        ("no/such/dir/r.json", "the folder", "mkdir -p"),
    ],
)
def test_folders_that_are_or_are_not_there(tmp_path, name, what, hint):
    path = str(tmp_path / name)
    with pytest.raises(PortmatrixError, match=what) as err:
        check_writable(path, "--flows")
    assert (err.value.file, err.value.where) == (path, "--flows")
    assert hint in err.value.hint


def test_no_permission(tmp_path, monkeypatch):
    # The tests may run as root, whom the permission bits do not stop: ask os.access.
    denied = tmp_path / "locked"
    denied.mkdir()
    real = os.access
    monkeypatch.setattr(files.os, "access", lambda p, mode: real(p, mode) and p != denied)
    with pytest.raises(PortmatrixError, match="no permission to write here"):
        check_writable(str(denied / "r.json"), "--output")


def test_an_input_is_never_an_output(tmp_path):
    capture = tmp_path / "c.pcap"
    capture.write_bytes(b"data")
    link = tmp_path / "link.pcap"
    link.symlink_to(capture)
    for target in (capture, link):
        with pytest.raises(PortmatrixError, match="is one of the inputs") as err:
            check_writable(str(target), "-o", ["-", str(capture)])
        assert err.value.hint == "write the output to another file"
    assert capture.read_bytes() == b"data"
    check_writable(str(tmp_path / "other.pcap"), "-o", [str(capture), "-"])


def test_atomic_replaces_the_file_only_when_complete(tmp_path):
    path = tmp_path / "report.json"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic(str(path)) as fh:
        fh.write("half of the new")
        raise KeyboardInterrupt  # Ctrl-C half way
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]  # no .part left
    with atomic(str(path)) as fh:
        fh.write("new\n")
        assert path.read_text() == "old"  # not yet
    assert path.read_text() == "new\n"


def test_atomic_files_get_the_usual_permissions_and_binary_mode(tmp_path):
    mask = os.umask(0o027)
    try:
        with atomic(str(tmp_path / "ev.pcapng"), "wb") as fh:
            fh.write(b"\x0a\x0d\x0d\x0a")
    finally:
        os.umask(mask)
    path = tmp_path / "ev.pcapng"
    assert path.read_bytes() == b"\x0a\x0d\x0d\x0a"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0666 less the umask, as open() does


def test_write_text_failures_are_one_line_errors(tmp_path):
    write_text(str(tmp_path / "r.txt"), "héllo\r\n")
    assert (tmp_path / "r.txt").read_bytes() == "héllo\r\n".encode()  # no newline translation
    with pytest.raises(PortmatrixError, match="cannot write") as err:
        write_text(str(tmp_path / "missing" / "r.txt"), "x", "--jsonl")
    assert err.value.where == "--jsonl"
