"""One flow-record file's reading: its whole content (gzip too, cut short or
damaged), its head for detection, and what is said about damaged lines."""

from __future__ import annotations

import gzip

import pytest

from portmatrix.errors import CaptureError
from portmatrix.records.source import FileRead, head, read_all

TEXT = b"".join(b"line %d of the log\n" % i for i in range(20000))


def test_read_all(tmp_path):
    plain = tmp_path / "a.log"
    plain.write_bytes(TEXT)
    assert read_all(str(plain)) == (TEXT, "")
    gz = tmp_path / "a.log.gz"
    gz.write_bytes(gzip.compress(TEXT))
    assert read_all(str(gz)) == (TEXT, "")
    members = tmp_path / "b.log.gz"  # two gzip members, as `cat a.gz b.gz` makes
    members.write_bytes(gzip.compress(TEXT[:1000]) + gzip.compress(TEXT[1000:]))
    assert read_all(str(members)) == (TEXT, "")
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(gzip.compress(TEXT)[:3000])
    data, why = read_all(str(cut))
    assert why.startswith("compressed data ends early") and data.endswith(b"\n")
    assert 0 < len(data) < len(TEXT) and TEXT.startswith(data)
    damaged = bytearray(gzip.compress(TEXT))
    damaged[2000:2010] = b"\xff" * 10
    cut.write_bytes(bytes(damaged))
    data, why = read_all(str(cut))
    assert why and TEXT.startswith(data)


def test_head(tmp_path):
    gz = tmp_path / "a.log.gz"
    gz.write_bytes(gzip.compress(TEXT))
    assert head(str(gz), 100) == TEXT[:100]
    assert head(str(tmp_path / "missing")) == b""


def test_damaged_lines_are_counted_and_the_first_named(tmp_path):
    path = tmp_path / "f.log"
    path.write_text("x\n")
    read = FileRead(0, str(path), format="aws-vpc")
    read.damaged([3, 9, 12, 15, 20, 21, 22], "not a record")
    read.invalid_rows.append("short row")
    (notice,) = read.info().notices
    assert notice.startswith("8 line(s) are not flow records and were skipped: line 3:")
    assert "line 20" in notice and "line 21" not in notice  # five named
    with pytest.raises(CaptureError, match="line 3: no flow record could be read"):
        read.check_any("give flow logs")
    read.rows = 1
    read.check_any("give flow logs")  # some records: the damage is a notice
