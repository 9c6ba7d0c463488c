"""NetFlow through nfdump: the columns of its fmt output, read with a stand-in
nfdump (the real one is driven in tests/conformance/test_flow_records.py)."""

from __future__ import annotations

import os
import stat

from portmatrix.records.formats import detect, read_records
from portmatrix.records.netflow import FORMAT, sniff
from support import flowlogs as fl

HEADER = b"\x0c\xa5\x02\x00" + bytes(60)

# %tsr|%td|%pr|%sa|%sp|%da|%dp|%flg|%pkt|%byt|%fwd|%it|%ic|%exp, padded as nfdump pads.
RECORDS = [
    ("1709287200.000", "0.007", 6, "10.40.1.7", 37402, "10.20.0.11", 443, "...AP.SF", 5, 234),
    ("1709287200.001", "0.006", 6, "10.20.0.11", 443, "10.40.1.7", 37402, "...AP.SF", 3, 155),
    ("1709287201.000", "0.000", 6, "10.40.1.7", 40001, "10.20.0.12", 22, "......S.", 2, 120, 130),
    ("1709287202.000", "0.010", 1, "10.20.0.11", 0, "10.20.0.12", "8.0", "........", 1, 84, 0, 8),
    ("1709287202.001", "0.000", 1, "10.20.0.12", 0, "10.20.0.11", "0.0", "........", 1, 84),
    ("1709287203.000", "0.000", 6, "fd00::a14:b", 50000, "fd00::a14:c", 2100, "......S.", 1, 80),
    ("1709287203.002", "0.000", 6, "fd00::a14:c", 2100, "fd00::a14:b", 50000, "...A.R..", 1, 60),
]
OUTPUT = "".join("|".join(f"{v:>8}" for v in (*r, *(0,) * (14 - len(r)))) + "\n" for r in RECORDS)


def fake_nfdump(tmp_path, monkeypatch, output: str, stderr: str = "") -> None:
    """An `nfdump` on PATH that prints `output` when asked for portmatrix's format."""
    (tmp_path / "out.txt").write_text(output)
    script = tmp_path / "bin" / "nfdump"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/sh\n"
        f'case "$*" in *"{FORMAT}"*) cat "{tmp_path / "out.txt"}";; *) exit 9;; esac\n'
        f'printf "%s" "{stderr}" >&2\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")


def judged(path) -> tuple[list, object]:
    traffic = read_records([str(path)])
    return fl.judged_flows(traffic, ("proto", *fl.JUDGED)), traffic


def test_records_both_ways_joined(tmp_path, monkeypatch):
    fake_nfdump(tmp_path, monkeypatch, OUTPUT)
    path = tmp_path / "nfcapd.202403011000"
    path.write_bytes(HEADER)
    assert sniff(HEADER) and detect(str(path)) == "netflow"
    got, traffic = judged(path)
    assert got == [
        ("icmp", "10.20.0.11", "10.20.0.12", 0, 1, 1, "established", "request"),
        ("tcp", "10.40.1.7", "10.20.0.11", 443, 5, 3, "established", "syn"),
        ("tcp", "10.40.1.7", "10.20.0.12", 22, 2, 0, "blocked", "syn"),  # forwarding: dropped
        ("tcp", "fd00::a14:b", "fd00::a14:c", 2100, 1, 1, "refused", "syn"),
    ]
    assert traffic.captures[0].format == "nfdump" and traffic.captures[0].frames == 7


def test_what_nfdump_says_on_stderr_is_reported(tmp_path, monkeypatch):
    fake_nfdump(tmp_path, monkeypatch, OUTPUT.splitlines()[0] + "\n", "Short read from file")
    path = tmp_path / "nfcapd.1"
    path.write_bytes(HEADER)
    _, traffic = judged(path)
    assert traffic.captures[0].truncated.startswith("nfdump says: Short read from file")


def test_a_file_forced_as_netflow_that_is_none_is_one_error(tmp_path, monkeypatch):
    """--flowlog-format netflow on an AWS log: one line saying it is no nfdump file,
    before nfdump is run (which would say "bad magic" and leave an empty report)."""
    import pytest

    from portmatrix.errors import CaptureError

    fake_nfdump(tmp_path, monkeypatch, OUTPUT)
    path = tmp_path / "aws.log"
    path.write_text("version account-id interface-id srcaddr dstaddr\n")
    with pytest.raises(CaptureError, match="not an nfdump file") as raised:
        read_records([str(path)], "netflow")
    assert "--flowlog-format" in str(raised.value)
