"""Prometheus metrics of a running watch: served over HTTP, a busy port a clear error."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from portmatrix.errors import PortmatrixError
from portmatrix.watch.metrics import Metrics


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()


def test_prometheus_metrics_are_served(demo_watch):
    watcher, _ = demo_watch  # the Watcher keeps the verdict of what it announced
    port = free_port()
    metrics = Metrics(port)
    metrics.update(watcher, drops=3, wire_bytes=12345)
    text = scrape(port)
    assert "portmatrix_packets 268.0" in text
    assert "portmatrix_bytes 12345.0" in text
    assert watcher.active + watcher.flows_done == 40
    assert f"portmatrix_flows_active {watcher.active}.0" in text
    assert f"portmatrix_flows_finished {watcher.flows_done}.0" in text
    assert "portmatrix_capture_drops 3.0" in text
    assert 'portmatrix_findings{severity="error",verdict="wrong-direction"} 1.0' in text


def test_a_finding_that_got_worse_is_counted_at_its_new_severity_only(demo_watch):
    watcher, _ = demo_watch
    port = free_port()
    metrics = Metrics(port)
    metrics.update(watcher, drops=0, wire_bytes=0)
    watcher.verdict_of["PM-made-up"] = "missing-required"
    watcher.announced["PM-made-up"] = "warning"
    metrics.update(watcher, drops=0, wire_bytes=0)
    assert 'portmatrix_findings{severity="warning",verdict="missing-required"} 1.0' in scrape(port)
    watcher.announced["PM-made-up"] = "error"  # escalated
    metrics.update(watcher, drops=0, wire_bytes=0)
    text = scrape(port)
    assert 'severity="warning",verdict="missing-required"' not in text
    assert 'portmatrix_findings{severity="error",verdict="missing-required"} 1.0' in text


def test_lag_is_the_wall_clock_behind_the_newest_packet(demo_watch):
    watcher, _ = demo_watch
    port = free_port()
    Metrics(port).update(watcher, drops=0, wire_bytes=0)
    (line,) = [x for x in scrape(port).splitlines() if x.startswith("portmatrix_processing_lag")]
    # The demo was captured in March 2024: the lag is at least the time since then.
    assert float(line.split()[-1]) > 365 * 86400


def test_metrics_on_a_busy_port_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        with pytest.raises(PortmatrixError, match="cannot serve metrics"):
            Metrics(s.getsockname()[1])
