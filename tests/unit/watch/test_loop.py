"""The watch loop with a stand-in live source (no capture privileges needed)."""

from __future__ import annotations

import json

from portmatrix.policy.inventory import load_inventory
from portmatrix.policy.matrix import load_matrix
from portmatrix.sources.capture import Capture
from portmatrix.watch.lines import event_line
from portmatrix.watch.loop import Outputs, run_watch
from portmatrix.watch.watcher import Watcher
from support.paths import REPO as ROOT

DEMO = str(ROOT / "captures" / "thoughtspot-demo.pcap")
DEMO_INVENTORY = str(ROOT / "captures" / "thoughtspot-demo.inventory.yaml")


class FileSource:
    """A capture file standing in for a live interface."""

    ifaces: list[str] = []  # noqa: RUF012 - no interfaces: no kernel drop counters

    def __init__(self, path: str, died: str = "") -> None:
        self.capture = Capture(path)
        self.info = self.capture.info
        self.died = died
        self.stopped = False

    def batches(self):
        yield from self.capture.batches()

    def stop(self) -> None:
        self.stopped = True

    def kill(self) -> None:
        pass


def watch(tmp_path, source, **options):
    matrix = load_matrix(["thoughtspot"])
    watcher = Watcher(matrix, load_inventory(DEMO_INVENTORY, matrix))
    lines: list[str] = []
    jsonl = tmp_path / "findings.jsonl"
    with open(jsonl, "a", encoding="utf-8") as out:
        result, failure = run_watch(
            source,
            watcher,
            Outputs(lines.append, out),
            duration=options.get("duration"),
            report_every=0.0,
        )
    return result, failure, lines, [json.loads(x) for x in jsonl.read_text().splitlines()]


def test_every_finding_is_announced_once_in_lines_and_json_lines(tmp_path):
    result, failure, lines, records = watch(tmp_path, FileSource(DEMO))
    assert failure == ""
    ids = [r["event"]["id"] for r in records]
    assert len(ids) == len(set(ids)) == len(result.findings)
    assert set(ids) == {f.id for f in result.findings}
    news = [line for line in lines if line.startswith("NEW ")]
    assert len(news) == len(result.findings)
    assert any("packets; flows:" in line and "findings:" in line for line in lines)  # summaries
    assert result.verdict_counts()["unexpected-port"] == 3
    assert result.traffic.captures[0].path == DEMO
    assert {r["event"]["reason"] for r in records} == {"new"}


def test_a_capture_that_dies_is_reported_with_what_was_seen(tmp_path):
    result, failure, _, _ = watch(tmp_path, FileSource(DEMO, died="dumpcap: killed"))
    assert failure == "dumpcap: killed"
    assert sum(result.verdict_counts().values()) == 40


def test_event_line_names_what_and_where(tmp_path):
    from portmatrix.watch.watcher import Event

    result, _, _, _ = watch(tmp_path, FileSource(DEMO))
    flow = next(f for f in result.findings if f.verdict == "wrong-direction")
    line = event_line(Event("new", flow))
    assert line.startswith("NEW error wrong-direction 10.20.0.11 → 10.30.0.5 tcp/22 [PM-")


def test_prometheus_metrics_are_served(tmp_path):
    import socket
    import urllib.request

    from portmatrix.decode import decode
    from portmatrix.watch.metrics import Metrics

    with socket.socket() as s:  # a free port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    matrix = load_matrix(["thoughtspot"])
    watcher = Watcher(matrix, load_inventory(DEMO_INVENTORY, matrix))
    for raw in Capture(DEMO).batches():
        watcher.add(*decode(raw))
    watcher.tick()  # announces, and remembers each verdict itself
    metrics = Metrics(port)
    metrics.update(watcher, drops=3, wire_bytes=12345)
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "portmatrix_packets 268.0" in text
    assert "portmatrix_bytes 12345.0" in text
    assert watcher.active + watcher.flows_done == 40
    assert f"portmatrix_flows_active {watcher.active}.0" in text
    assert f"portmatrix_flows_finished {watcher.flows_done}.0" in text
    assert "portmatrix_capture_drops 3.0" in text
    assert 'portmatrix_findings{severity="error",verdict="wrong-direction"} 1.0' in text


def test_metrics_on_a_busy_port_is_a_clear_error(tmp_path):
    import socket

    import pytest

    from portmatrix.errors import PortmatrixError
    from portmatrix.watch.metrics import Metrics

    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        with pytest.raises(PortmatrixError, match="cannot serve metrics"):
            Metrics(s.getsockname()[1])
