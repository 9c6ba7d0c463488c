"""Capture loss, counted right and seen at once: tcpreplay floods a veth pair (or the
loopback) in a network namespace of its own while watch captures on the other
end, and watch is
stopped (SIGSTOP) for two seconds in the middle, past what it can take; the loss
it reports — in a summary line while it runs, and in the final report — is what
tcpreplay sent minus what watch analysed, each packet once.

Needs root (a namespace, capture) with dumpcap, tcpreplay and iproute2: CI runs
as root with them (CI=true), so these never skip there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from portmatrix.testing.captures import ether, ip, write_pcap
from support.netns import veth_namespace

NEEDS = ("dumpcap", "tcpreplay", "ip")
CAN = os.geteuid() == 0 and all(shutil.which(p) for p in NEEDS)
if not CAN:
    if os.environ.get("CI"):
        pytest.fail(
            "CI must run the drop test: root with dumpcap, tcpreplay, iproute2", pytrace=False
        )
    pytestmark = pytest.mark.skip(reason="needs root, dumpcap, tcpreplay and iproute2")

MATRIX = """\
name: drops-test
roles:
  nodes: Nodes
rules:
  - id: node-dns
    service: DNS
    proto: udp
    ports: 53
    from: nodes
    to: nodes
"""
INVENTORY = "roles:\n  nodes: [10.9.0.0/24]\n"


@pytest.fixture
def namespace():
    """A network namespace with a veth pair vA <-> vB, both up; its name."""
    with veth_namespace("pm-drops") as name:
        yield name


@pytest.mark.parametrize(
    ("send", "capture"),
    [("vA", "vB"), ("lo", "lo")],  # loopback: each packet crosses it twice, counts once
)
def test_a_flood_past_what_watch_takes_is_counted_as_lost(tmp_path, namespace, send, capture):
    (tmp_path / "m.yaml").write_text(MATRIX)
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    packets = [
        ether(ip(f"10.9.0.{1 + i % 200}", "10.9.0.250") / _udp(40000 + i, 53)) for i in range(2000)
    ]
    replay = write_pcap(tmp_path / "flood.pcap", packets)
    log, report = tmp_path / "watch.log", tmp_path / "report.json"
    watch = subprocess.Popen(
        [
            *("ip", "netns", "exec", namespace, sys.executable, "-m", "portmatrix", "watch"),
            *("-i", capture, "--rules", str(tmp_path / "m.yaml")),
            *("--inventory", str(tmp_path / "inv.yaml")),
            *("--report-every", "1s", "--duration", "14s", "--log", str(log)),
            *("--format", "json", "-o", str(report)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = watch.stderr.readline()
    assert f"watching {capture}" in first, first + watch.stderr.read()
    time.sleep(1.0)
    sender = subprocess.Popen(
        [
            *("ip", "netns", "exec", namespace, "tcpreplay", "-i", send),
            *("--pps", "40000", "--loop", "100", str(replay)),  # 200,000 packets in 5 s
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(1.0)
    os.kill(watch.pid, signal.SIGSTOP)  # watch takes nothing: the pipe, then dumpcap's buffer fill
    time.sleep(2.5)
    os.kill(watch.pid, signal.SIGCONT)
    out, _ = sender.communicate(timeout=60)
    sent = int(re.search(r"Actual: (\d+) packets", out)[1])
    _, err = watch.communicate(timeout=60)
    assert watch.returncode in (0, 1), err
    doc = json.loads(report.read_text())
    analysed, lost = doc["summary"]["packets"], doc["capture_health"]["drops"]
    assert lost > 1000, (sent, analysed, lost)  # the stop did make it drop
    # Each packet once: what was sent is what was analysed plus what was lost.
    assert abs(sent - analysed - lost) <= 20, (sent, analysed, lost)
    # Seen while it ran: a summary line said so before the end.
    summaries = [x for x in log.read_text().splitlines() if " packets" in x and "dropped" in x]
    during = [
        int(m[1].replace(",", ""))
        for x in summaries[:-1]
        if (m := re.search(r"dropped ([\d,]+)", x))
    ]
    assert during and max(during) > 1000, summaries
    assert any("lost at the capture" in n and "offered by the kernel" in n for n in doc["notices"])


def _udp(sport: int, dport: int):
    from scapy.layers.inet import UDP

    return UDP(sport=sport, dport=dport) / b"x"
