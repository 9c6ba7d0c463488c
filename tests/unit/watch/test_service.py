"""`watch` as a command owns what it starts: every output is checked before the
capture starts, and no dumpcap outlives it, whichever piece fails or is killed.

dumpcap is a stand-in (tests/support/fake_dumpcap.py) that streams the demo
capture and records every start, so this runs without root.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from portmatrix.errors import ExitCode
from portmatrix.watch.service import WatchOptions, run
from support.fake_dumpcap import alive, exiting_dumpcap, fake_dumpcap
from support.paths import CAPTURES, REPO
from support.terminal import PORTMATRIX

DEMO = CAPTURES / "thoughtspot-demo.pcap"
INVENTORY = CAPTURES / "thoughtspot-demo.inventory.yaml"


@pytest.fixture
def stand_in(tmp_path):
    return fake_dumpcap(tmp_path, DEMO)


def watch(dumpcap: Path, *args: str, wait: bool = True, **kw):
    command = [
        str(PORTMATRIX),
        "watch",
        "-i",
        "lo",
        "--dumpcap",
        str(dumpcap),
        "--rules",
        "thoughtspot",
        "--inventory",
        str(INVENTORY),
        *args,
    ]
    if not wait:
        return subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60, **kw)


def started(pids: Path) -> int:
    """Captures the stand-in started (its `-D` listings not counted: they exit)."""
    return len(pids.read_text().split()) if pids.exists() else 0


def assert_refused_before_capture(result, pids, option):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("portmatrix: error: "), result.stderr
    assert option in lines[0]
    assert started(pids) == 0  # not even `dumpcap -D`: nothing ran
    assert "watching" not in result.stderr


def test_jsonl_into_a_missing_folder_is_refused_before_capture(stand_in, tmp_path):
    dumpcap, pids = stand_in
    result = watch(dumpcap, "--jsonl", str(tmp_path / "no" / "f.jsonl"), "--duration", "1s")
    assert_refused_before_capture(result, pids, "--jsonl")


def test_report_to_a_missing_folder_is_refused_before_capture(stand_in, tmp_path):
    dumpcap, pids = stand_in
    result = watch(dumpcap, "-o", str(tmp_path / "no" / "r.json"), "--duration", "1s")
    assert_refused_before_capture(result, pids, "--output")


def test_a_busy_metrics_port_is_refused_before_capture(stand_in):
    dumpcap, pids = stand_in
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = watch(dumpcap, "--metrics-port", str(port), "--duration", "1s")
    assert_refused_before_capture(result, pids, "--metrics-port")


def test_a_ring_under_a_file_is_refused_before_capture(stand_in, tmp_path):
    dumpcap, pids = stand_in
    (tmp_path / "plain").write_text("x")
    result = watch(dumpcap, "--ring", str(tmp_path / "plain" / "ring"), "--duration", "1s")
    assert_refused_before_capture(result, pids, "--ring")


def test_a_normal_end_leaves_no_dumpcap_behind(stand_in, tmp_path):
    dumpcap, pids = stand_in
    result = watch(
        dumpcap,
        "--duration",
        "2s",
        "--ring",
        str(tmp_path / "ring"),
        "--jsonl",
        str(tmp_path / "f.jsonl"),
        "-o",
        str(tmp_path / "r.json"),
    )
    assert result.returncode == 1, result.stderr
    assert started(pids) == 3  # -D (the interfaces), the capture, the ring
    assert alive(pids) == []
    assert "portmatrix: wrote" in result.stderr and (tmp_path / "r.json").exists()


def test_dumpcap_dying_is_exit_2_with_the_report_and_nothing_left(stand_in, tmp_path):
    dumpcap, pids = stand_in
    proc = watch(dumpcap, "--ring", str(tmp_path / "ring"), wait=False)
    _wait_for(lambda: len(alive(pids)) == 2)
    capture = _capturing_to_pipe(pids)
    os.kill(capture, signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    assert "portmatrix: error: the capture stopped" in err and "Traceback" not in err
    assert "Required services" in out  # the report of what was seen until then
    assert alive(pids) == []


def test_sigterm_stops_everything(stand_in, tmp_path):
    dumpcap, pids = stand_in
    proc = watch(dumpcap, "--ring", str(tmp_path / "ring"), wait=False)
    _wait_for(lambda: len(alive(pids)) == 2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert "Required services" in out
    assert alive(pids) == []


def test_dumpcap_dies_with_a_killed_portmatrix(stand_in, tmp_path):
    """SIGKILL runs no cleanup: the kernel stops the children (PR_SET_PDEATHSIG)."""
    dumpcap, pids = stand_in
    proc = watch(dumpcap, "--ring", str(tmp_path / "ring"), wait=False)
    _wait_for(lambda: len(alive(pids)) == 2)
    proc.kill()
    proc.communicate(timeout=30)
    _wait_for(lambda: alive(pids) == [])


def _wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def _capturing_to_pipe(pids: Path) -> int:
    """The stand-in that writes to portmatrix's pipe (not the ring's)."""
    for pid in alive(pids):
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"-w" in argv and argv[argv.index(b"-w") + 1] == b"-":
            return pid
    raise AssertionError("no capture to the pipe is running")


# In the same process, with a stand-in that ends (or dies) on its own ------------------


def options(dumpcap: str, **more) -> WatchOptions:
    return WatchOptions(
        ifaces=("eth0",),
        rules=("thoughtspot",),
        inventory=str(INVENTORY),
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
    assert err[-1].startswith(f"portmatrix: wrote {report} (json): 40 flows, 7 errors")
    assert any(line.startswith("NEW error wrong-direction") for line in err)


def test_fail_on_never_exits_0(tmp_path, capsys):
    exe = exiting_dumpcap(tmp_path, capture=DEMO.read_bytes())
    assert run(options(exe, fail_on="never", outputs=(str(tmp_path / "r.txt"),))) == 0


def test_a_capture_that_dies_says_why_and_reports_what_it_saw(tmp_path, capsys):
    data = DEMO.read_bytes()
    exe = exiting_dumpcap(tmp_path, capture=data[: len(data) // 2], stderr="device gone", status=1)
    report = tmp_path / "r.json"
    assert run(options(exe, outputs=(str(report),))) == ExitCode.BAD_INPUT
    assert 0 < json.loads(report.read_text())["summary"]["flows"] < 40
    assert capsys.readouterr().err.splitlines()[-1] == (
        "portmatrix: error: the capture stopped: dumpcap ended on its own (exit status 1): "
        "device gone — the report covers "
        "what was captured until then"
    )
