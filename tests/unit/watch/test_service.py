"""`watch` as a command owns what it starts: every output is checked before the
capture starts, and no dumpcap outlives it, whichever piece fails or is killed.

dumpcap is a stand-in (tests/support/fake_dumpcap.py) that streams the demo
capture and records every start, so this runs without root.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from portmatrix.errors import ExitCode
from portmatrix.testing.captures import write_pcap
from portmatrix.watch.service import WatchOptions, capture_filter, run
from support.fake_dumpcap import alive, exiting_dumpcap, fake_dumpcap, paced_dumpcap
from support.live_traffic import service_stops
from support.paths import CAPTURES, REPO
from support.terminal import PORTMATRIX

DEMO = CAPTURES / "thoughtspot-demo.pcap"
INVENTORY = CAPTURES / "thoughtspot-demo.inventory.yaml"
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "


@pytest.fixture
def stand_in(tmp_path):
    return fake_dumpcap(tmp_path, DEMO)


def command(dumpcap: Path, *args: str, iface: str = "lo") -> list[str]:
    """watch on the demo's inventory, reading the stand-in `dumpcap`."""
    return [
        *(str(PORTMATRIX), "watch", "-i", iface, "--dumpcap", str(dumpcap)),
        *("--rules", "thoughtspot", "--inventory", str(INVENTORY), *args),
    ]


def watch(dumpcap: Path, *args: str, wait: bool = True, **kw):
    argv = command(dumpcap, *args)
    if not wait:
        return subprocess.Popen(
            argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60, **kw)


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
    assert any(re.match(STAMP + "NEW error wrong-direction", line) for line in err)


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


# As a service: coverage while running, rotation, restarts, syslog, metrics --------


def start(dumpcap: Path, site, *args: str) -> subprocess.Popen:
    """watch on the small site, reading the stand-in `dumpcap`, as a process."""
    paths = site("small")
    argv = [str(PORTMATRIX), "watch", "-i", "eth0", "--dumpcap", str(dumpcap)]
    argv += ["--rules", str(paths.matrix), "--inventory", str(paths.inventory), *args]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def udp_listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    return sock


def received(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(65536))
        except TimeoutError:
            return out


def test_a_service_that_stops_half_way_is_alarmed_while_watch_runs(tmp_path, site):
    """The replayed capture: RPC established for 2 s, gone for 3 s, back for 3 s;
    gossip all along. With a 2 s window the alarm comes while watch runs, once,
    with when RPC was last seen, and the recovery after it; to the terminal, the
    JSON lines, syslog and the metrics alike."""
    capture = write_pcap(
        tmp_path / "stops.pcap", [f for second in service_stops(8, gap=(2, 5)) for f in second]
    )
    dumpcap, pids = paced_dumpcap(tmp_path, capture)
    syslog, port = udp_listener(), free_port()
    proc = start(
        dumpcap,
        site,
        *("--coverage-window", "2s", "--report-every", "0.5", "--duration", "9s"),
        *("--jsonl", str(tmp_path / "f.jsonl"), "--syslog", f"127.0.0.1:{syslog.getsockname()[1]}"),
        *("--metrics-port", str(port), "-o", str(tmp_path / "r.json")),
        *("--log", str(tmp_path / "w.log")),
    )
    log = tmp_path / "w.log"
    _wait_for(lambda: log.exists() and "NEW error missing-required" in log.read_text())
    down = metric_samples(port, "portmatrix_required_rule_up")  # in the gap: down now
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err  # it came back: nothing stands at the end
    lines = err.splitlines()
    raised = [x for x in lines if re.match(STAMP + "NEW error missing-required rule node-rpc", x)]
    back = [
        x for x in lines if re.match(STAMP + "RECOVERED info missing-required rule node-rpc", x)
    ]
    assert len(raised) == len(back) == 1, err
    assert lines.index(raised[0]) < lines.index(back[0])
    assert "last established 2023-11-14T22:13:21" in raised[0]  # the session of second 1
    assert back[0].endswith("after 4 s without")  # seconds 1 to 5
    assert not [x for x in lines if "node-gossip" in x]
    events = [json.loads(x) for x in (tmp_path / "f.jsonl").read_text().splitlines()]
    rpc = [(e["event"]["reason"], e["rule"]["id"]) for e in events if e["rule"]["id"] == "node-rpc"]
    assert rpc == [("new", "node-rpc"), ("recovered", "node-rpc")]
    messages = received(syslog)
    assert len(messages) == len(events)
    assert any(b" new [portmatrix@32473 " in m and b'rule.id="node-rpc"' in m for m in messages)
    assert down[(("rule", "node-rpc"),)] == 0 and down[(("rule", "node-gossip"),)] == 1
    report = json.loads((tmp_path / "r.json").read_text())
    assert {c["rule"]: c["status"] for c in report["coverage"]}["node-rpc"] == "ok"  # back
    assert alive(pids) == []


def test_rotation_by_logrotate_loses_no_line(tmp_path, site):
    """Files moved away mid-run, then SIGHUP, as logrotate's `create` mode does:
    every line is in the moved file or the new one."""
    capture = write_pcap(
        tmp_path / "t.pcap", [f for second in service_stops(6, gap=(1, 6)) for f in second]
    )
    dumpcap, _ = paced_dumpcap(tmp_path, capture)
    jsonl, log = tmp_path / "f.jsonl", tmp_path / "w.log"
    proc = start(
        dumpcap,
        site,
        *("--coverage-window", "1s", "--report-every", "0.5", "--duration", "5s"),
        *("--jsonl", str(jsonl), "--log", str(log)),
    )
    _wait_for(lambda: log.exists() and "NEW" in log.read_text())
    jsonl.rename(tmp_path / "f.jsonl.1")
    log.rename(tmp_path / "w.log.1")
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    stamped = [x for x in err.splitlines() if re.match(STAMP, x)]
    old, new = (tmp_path / "w.log.1").read_text().splitlines(), log.read_text().splitlines()
    assert old and new and old + new == stamped
    told = [x for x in stamped if re.match(STAMP + "(NEW|WORSE|RECOVERED) ", x)]
    events = (tmp_path / "f.jsonl.1").read_text().splitlines() + jsonl.read_text().splitlines()
    assert len(events) == len(told)


def test_a_restart_with_state_announces_nothing_again_and_forgets_nothing(tmp_path):
    exe = exiting_dumpcap(tmp_path, capture=DEMO.read_bytes())
    state, report = tmp_path / "state.json", tmp_path / "r.json"
    first = subprocess.run(
        [*_cli(exe), "--state", str(state), "-o", str(report)], capture_output=True, text=True
    )
    assert first.returncode == 1, first.stderr
    before = json.loads(report.read_text())
    assert sum(" NEW " in x for x in first.stderr.splitlines()) == len(before["findings"])
    again = subprocess.run(
        [*_cli(exe), "--state", str(state), "-o", str(report)], capture_output=True, text=True
    )
    assert again.returncode == 1, again.stderr
    assert " NEW " not in again.stderr and " WORSE " not in again.stderr
    assert "resumed from" in again.stderr
    after = json.loads(report.read_text())
    assert {f["id"] for f in after["findings"]} == {f["id"] for f in before["findings"]}
    flows = {f["id"]: f["flows"] for f in before["findings"] if f["kind"] == "flow"}
    assert {f["id"]: f["flows"] for f in after["findings"] if f["kind"] == "flow"} == {
        k: 2 * v for k, v in flows.items()
    }  # the same capture twice: every counter doubled
    assert after["summary"]["packets"] == 2 * before["summary"]["packets"]


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"{not json", "not a portmatrix watch state (not JSON"),
        (b'{"hello": 1}', "not a portmatrix watch state (no state mark in it)"),
        (b'{"portmatrix-watch-state": 1, "matrix": "other"}', "saved by a watch of matrix"),
        (b'{"portmatrix-watch-state": 1, "matrix": "thoughtspot"}', "damaged state"),
        (b"\xff\xfe\x00", "cannot read it"),
    ],
)
def test_a_foreign_or_damaged_state_is_one_line_before_capture(tmp_path, content, what):
    exe = exiting_dumpcap(tmp_path, capture=DEMO.read_bytes())
    state = tmp_path / "state.json"
    state.write_bytes(content)
    result = subprocess.run([*_cli(exe), "--state", str(state)], capture_output=True, text=True)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"portmatrix: error: {state}:--state: {what}"), line
    assert line.endswith("to start afresh")
    assert not (tmp_path / "args.txt").exists()  # dumpcap never ran
    assert state.read_bytes() == content  # left as it was


def _cli(dumpcap) -> list[str]:
    return command(dumpcap, "--report-every", "1h", iface="eth0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric_samples(port: int, name: str) -> dict:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == name]
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples}


def test_the_metrics_servers_own_traffic_is_left_out_of_the_capture():
    opts = WatchOptions(ifaces=("eth0",), rules=("thoughtspot",), metrics_port=9107)
    assert capture_filter(opts) == "not (tcp port 9107 and host 127.0.0.1)"
    opts.bpf, opts.metrics_address = "net 10.0.0.0/8", "0.0.0.0"
    assert capture_filter(opts) == "(net 10.0.0.0/8) and not (tcp port 9107)"
    opts.metrics_port = None
    assert capture_filter(opts) == "(net 10.0.0.0/8)"


def test_dumpcap_is_given_the_filter_without_the_metrics_port(tmp_path):
    exe = exiting_dumpcap(tmp_path, capture=DEMO.read_bytes())
    port = free_port()
    result = subprocess.run(
        [*_cli(exe), "--metrics-port", str(port), "--filter", "tcp"], capture_output=True, text=True
    )
    assert result.returncode == 1, result.stderr
    capture_args = (tmp_path / "args.txt").read_text().splitlines()[-1]
    assert capture_args.endswith(f"-f (tcp) and not (tcp port {port} and host 127.0.0.1)")


@pytest.mark.parametrize("report_to", ["terminal", "file"])
def test_what_the_end_settles_is_said_once_on_the_terminal(tmp_path, site, report_to):
    """RPC never shows up in a run shorter than its coverage window: the end settles
    it missing. When the final report goes to the terminal, that finding is in the
    report and not also a NEW line just before it; the log and the JSON lines have
    the event either way. With the report in a file, the terminal has the line."""
    capture = write_pcap(
        tmp_path / "gone.pcap", [f for second in service_stops(3, gap=(0, 3)) for f in second]
    )
    dumpcap, _ = paced_dumpcap(tmp_path, capture)
    log, jsonl = tmp_path / "w.log", tmp_path / "f.jsonl"
    report = ["-o", str(tmp_path / "r.json")] if report_to == "file" else []
    proc = start(
        dumpcap,
        site,
        *("--duration", "3s", "--log", str(log), "--jsonl", str(jsonl), *report),
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    new = re.compile(STAMP + "NEW error missing-required rule node-rpc")
    assert [x for x in log.read_text().splitlines() if new.match(x)], log.read_text()
    events = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert ("new", "node-rpc") in [(e["event"]["reason"], e["rule"]["id"]) for e in events]
    on_terminal = [x for x in err.splitlines() if new.match(x)]
    if report_to == "terminal":
        assert on_terminal == [] and "node-rpc" in out
    else:
        assert len(on_terminal) == 1 and out == ""
