"""`portmatrix watch` as a command, with a stand-in dumpcap streaming the demo
capture (no capture privileges needed): everything checked before the capture
starts, the final reports, the exit status, and a capture that dies."""

from __future__ import annotations

import json

import pytest

from portmatrix.errors import ExitCode, PortmatrixError
from portmatrix.watch.service import WatchOptions, run
from support.fake_dumpcap import exiting_dumpcap
from support.paths import DEMO, DEMO_INVENTORY


def options(dumpcap: str, **more) -> WatchOptions:
    return WatchOptions(
        ifaces=("eth0",),
        rules=("thoughtspot",),
        inventory=str(DEMO_INVENTORY),
        dumpcap=dumpcap,
        report_every=3600.0,
        **more,
    )


def test_a_watch_to_the_end_of_the_capture(tmp_path, capsys):
    exe = exiting_dumpcap(tmp_path, capture=DEMO.read_bytes())
    report, jsonl = tmp_path / "final.json", tmp_path / "findings.jsonl"
    code = run(options(exe, outputs=(str(report),), jsonl=str(jsonl)))
    assert code == ExitCode.FINDINGS  # errors in the demo, --fail-on error
    doc = json.loads(report.read_text())
    assert doc["summary"]["flows"] == 40
    events = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert {e["event"]["id"] for e in events} == {f["id"] for f in doc["findings"]}
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "portmatrix: watching eth0 against thoughtspot (bundled) until Ctrl-C"
    assert err[-1].startswith(f"portmatrix: wrote {report} (json): 40 flows, 9 errors")
    assert any(line.startswith("NEW error wrong-direction") for line in err)


def test_fail_on_never_exits_0(tmp_path, capsys):
    exe = exiting_dumpcap(tmp_path, capture=DEMO.read_bytes())
    assert run(options(exe, fail_on="never", outputs=(str(tmp_path / "r.txt"),))) == 0


def test_outputs_are_checked_before_dumpcap_starts(tmp_path):
    exe = exiting_dumpcap(tmp_path, capture=DEMO.read_bytes())
    with pytest.raises(PortmatrixError, match="does not exist"):
        run(options(exe, outputs=(str(tmp_path / "no" / "r.json"),)))
    with pytest.raises(PortmatrixError, match="does not exist"):
        run(options(exe, jsonl=str(tmp_path / "no" / "f.jsonl")))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PortmatrixError, match="cannot create the ring folder"):
        run(options(exe, ring_dir=str(blocker / "ring")))
    assert not (tmp_path / "args.txt").exists()  # dumpcap never ran, not even -D


def test_a_capture_that_dies_reports_what_it_saw_and_exits_2(tmp_path, capsys):
    data = DEMO.read_bytes()
    exe = exiting_dumpcap(tmp_path, capture=data[: len(data) // 2], stderr="device gone", status=1)
    report = tmp_path / "r.json"
    assert run(options(exe, outputs=(str(report),))) == ExitCode.BAD_INPUT
    assert 0 < json.loads(report.read_text())["summary"]["flows"] < 40
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        "portmatrix: error: the capture stopped: device gone — the report covers "
        "what was captured until then"
    )
