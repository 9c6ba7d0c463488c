"""Output files: checked before anything is read, written whole or not at all."""

from __future__ import annotations

import os

import pytest

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


def test_a_device_or_fifo_is_written_in_place_never_replaced(tmp_path):
    import stat
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
