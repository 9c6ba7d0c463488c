"""The inputs a command was given: files, folders and globs, and their total size."""

from __future__ import annotations

import pytest

from portmatrix.errors import CaptureError
from portmatrix.sources.inputs import expand_inputs, total_size


def test_expand_inputs(tmp_path, monkeypatch):
    d = tmp_path / "caps"
    d.mkdir()
    for name in ("b.pcap", "a.pcapng", ".hidden"):
        (d / name).write_bytes(b"")
    (d / "sub").mkdir()
    monkeypatch.chdir(tmp_path)

    assert expand_inputs([str(d)]) == [str(d / "a.pcapng"), str(d / "b.pcap")]
    assert expand_inputs(["caps/*.pcap"]) == ["caps/b.pcap"]
    assert expand_inputs([str(d / "*.pcap*")]) == [str(d / "a.pcapng"), str(d / "b.pcap")]
    assert expand_inputs(["-", "caps/b.pcap"]) == ["-", "caps/b.pcap"]
    with pytest.raises(CaptureError, match="no file matches"):
        expand_inputs(["caps/*.cap"])
    with pytest.raises(CaptureError, match="no such file"):
        expand_inputs(["caps/missing.pcap"])
    with pytest.raises(CaptureError, match="holds no files"):
        expand_inputs([str(d / "sub")])


def test_total_size_counts_the_files_on_disk(tmp_path):
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    a.write_bytes(bytes(100))
    b.write_bytes(bytes(23))
    assert total_size([str(a), str(b)]) == 123
    # Standard input has no size; a file gone since expansion counts nothing.
    assert total_size(["-", str(a), str(tmp_path / "gone.pcap")]) == 100
    assert total_size([]) == 0
