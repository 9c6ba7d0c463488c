"""`portmatrix watch` capturing for real on the loopback interface.

Needs capture privileges (root, or dumpcap's capabilities) and dumpcap. CI runs
as root with dumpcap installed, so these never skip there (CI=true); elsewhere
they skip with the reason.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

IN_CI = bool(os.environ.get("CI"))
CAN_CAPTURE = os.geteuid() == 0 and shutil.which("dumpcap") is not None

if not CAN_CAPTURE:
    if IN_CI:
        pytest.fail(
            "CI must run the live tests: it runs as root with dumpcap installed", pytrace=False
        )
    pytestmark = pytest.mark.skip(reason="live capture needs root and dumpcap")

# A /24 of the loopback network that nothing else on the machine uses, chosen
# afresh per run: two runs at once (or anything talking over 127.0.0.1) never
# show up in each other's capture.
NET = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}"
NODE1, NODE2, NODE3, ADMIN = (f"{NET}.{host}" for host in (11, 12, 13, 21))
FILTER = f"net {NET}.0/24"
MATRIX = """\
name: loopback-test
roles:
  nodes: Cluster nodes
  admins: Administrators
rules:
  - id: ssh-from-admins
    service: SSH
    proto: tcp
    ports: 2222
    from: admins
    to: nodes
  - id: node-rpc
    service: RPC
    proto: tcp
    ports: 7000
    from: nodes
    to: nodes
    initiator: either
    required: true
  - id: node-dns
    service: DNS
    proto: udp
    ports: 5354
    from: nodes
    to: nodes
    initiator: either
"""
INVENTORY = f"""\
roles:
  nodes: [{NODE1}-{NODE3}]
  admins: [{ADMIN}]
"""


def _listen(addr: str, port: int) -> socket.socket:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.sendall(conn.recv(100) or b"-")

    threading.Thread(target=serve, daemon=True).start()
    return srv


def _connect(src: str, dst: str, port: int) -> bool:
    with socket.socket() as c:
        c.bind((src, 0))
        try:
            c.connect((dst, port))
        except ConnectionRefusedError:
            return False
        c.sendall(b"hello")
        c.recv(100)
        return True


def _udp(src: str, dst: str, port: int, answer: bool) -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        if answer:
            server.bind((dst, port))
        client.bind((src, 0))
        client.sendto(b"query", (dst, port))
        if answer:
            _, peer = server.recvfrom(100)
            server.sendto(b"answer", peer)
            client.recvfrom(100)


def _start_watch(tmp_path: Path, *extra: str) -> subprocess.Popen:
    (tmp_path / "matrix.yaml").write_text(MATRIX)
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    cmd = [
        sys.executable,
        "-m",
        "portmatrix",
        "watch",
        "-i",
        "lo",
        "--filter",
        FILTER,
        "--rules",
        str(tmp_path / "matrix.yaml"),
        "--inventory",
        str(tmp_path / "inventory.yaml"),
        "--report-every",
        "1s",
        "--idle-timeout",
        "2s",
        "--jsonl",
        str(tmp_path / "findings.jsonl"),
        "--format",
        "json",
        "--output",
        str(tmp_path / "report.json"),
        *extra,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Wait until the capture runs: its first line says so.
    line = proc.stderr.readline()
    assert "watching lo" in line, line + proc.stderr.read()
    time.sleep(1.0)  # dumpcap opened the interface before announcing; leave it a moment
    return proc


def _traffic() -> None:
    servers = [_listen(NODE2, 7000), _listen(NODE2, 8443), _listen(ADMIN, 2222)]
    try:
        assert _connect(NODE1, NODE2, 7000)  # allowed, required rule exercised
        assert _connect(ADMIN, NODE2, 8443)  # unexpected-port, established: error
        assert _connect(NODE2, ADMIN, 2222)  # wrong-direction, established: error
        assert not _connect(NODE1, NODE3, 7000)  # allowed but refused: required -> error
        _udp(NODE1, NODE2, 5354, answer=True)  # allowed, answered
    finally:
        for s in servers:
            s.shutdown(socket.SHUT_RDWR)  # wakes the thread in accept(), frees the port
            s.close()


def test_watch_reports_findings_as_they_appear_and_a_final_report(tmp_path):
    proc = _start_watch(tmp_path, "--duration", "8s")
    _traffic()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err  # errors found
    lines = [json.loads(x) for x in (tmp_path / "findings.jsonl").read_text().splitlines()]
    seen = {
        (
            e["event"]["action"],
            e["source"]["ip"],
            e["destination"]["ip"],
            e["destination"]["port"],
            e["labels"]["severity"],
        )
        for e in lines
        if "source" in e
    }
    assert seen == {
        ("unexpected-port", ADMIN, NODE2, 8443, "error"),
        ("wrong-direction", NODE2, ADMIN, 2222, "error"),
        ("allowed", NODE1, NODE3, 7000, "error"),
    }
    assert all(e["event"]["reason"] == "new" for e in lines)
    assert "NEW error unexpected-port" in err and "packets" in err  # lines and summaries
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["summary"]["verdicts"]["allowed"] == 3  # rpc, refused rpc, dns
    assert report["summary"]["verdicts"]["unexpected-port"] == 1
    assert report["summary"]["verdicts"]["wrong-direction"] == 1
    coverage = {c["rule"]: c for c in report["coverage"]}
    assert coverage["node-rpc"]["status"] == "ok"
    assert (coverage["node-rpc"]["established"], coverage["node-rpc"]["failed"]) == (1, 1)
    assert coverage["node-dns"]["established"] == 1
    assert report["decode"]["frames"] == report["summary"]["packets"] > 0


def test_sigterm_stops_cleanly_with_the_report(tmp_path):
    proc = _start_watch(tmp_path)
    _traffic()
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["summary"]["flows"] == 5


def test_dumpcap_dying_is_exit_2_with_the_report_so_far(tmp_path):
    proc = _start_watch(tmp_path)
    _traffic()
    time.sleep(1.5)
    children = subprocess.run(
        ["pgrep", "-P", str(proc.pid), "dumpcap"], capture_output=True, text=True
    ).stdout.split()
    assert children, "dumpcap is not running under watch"
    for pid in children:
        os.kill(int(pid), signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert "portmatrix: error: the capture stopped" in err
    assert "Traceback" not in err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["summary"]["verdicts"]["wrong-direction"] == 1


def test_unknown_interface_is_exit_2_one_line(tmp_path):
    (tmp_path / "m.yaml").write_text(MATRIX)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "portmatrix",
            "watch",
            "-i",
            "nosuch0",
            "--rules",
            str(tmp_path / "m.yaml"),
            "--duration",
            "1s",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("portmatrix: error: -i: unknown interface 'nosuch0'")
    assert "lo" in result.stderr and len(result.stderr.splitlines()) == 1


def test_no_permission_is_exit_2_with_the_fix():
    # As nobody, who may not capture (the bundled matrix needs no file nobody can read).
    command = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        sys.executable,
        "-m",
        "portmatrix",
        "watch",
        "-i",
        "lo",
        "--rules",
        "thoughtspot",
        "--duration",
        "1s",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "no permission to capture" in result.stderr
    assert "wireshark" in result.stderr and "Traceback" not in result.stderr


def test_without_dumpcap_scapy_captures_and_says_so(tmp_path):
    (tmp_path / "bin").mkdir()
    env = dict(os.environ, PATH=str(tmp_path / "bin"))  # no dumpcap on this PATH
    (tmp_path / "matrix.yaml").write_text(MATRIX)
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "portmatrix",
            "watch",
            "-i",
            "lo",
            "--filter",
            FILTER,
            "--rules",
            str(tmp_path / "matrix.yaml"),
            "--inventory",
            str(tmp_path / "inventory.yaml"),
            "--duration",
            "8s",
            "--format",
            "json",
            "--output",
            str(tmp_path / "report.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert "dumpcap not found" in proc.stderr.readline()
    time.sleep(3)  # scapy takes a while to import and start
    _traffic()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["summary"]["verdicts"]["wrong-direction"] == 1
    assert report["summary"]["verdicts"]["unexpected-port"] == 1


def test_ring_keeps_the_raw_traffic(tmp_path):
    ring = tmp_path / "ring"
    proc = _start_watch(
        tmp_path, "--duration", "5s", "--ring", str(ring), "--ring-files", "3", "--ring-size", "1"
    )
    _traffic()
    proc.communicate(timeout=60)
    files = sorted(ring.glob("portmatrix*.pcapng"))
    assert files, "no ring file written"
    result = subprocess.run(
        [sys.executable, "-m", "portmatrix", "flows", *map(str, files), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    flows = json.loads(result.stdout)["flows"]
    assert any(f["responder_port"] == 8443 and f["initiator"] == ADMIN for f in flows)
