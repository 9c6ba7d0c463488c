"""Prometheus metrics of a running watch, read back with prometheus_client's own
parser: names, types, labels and values as Prometheus users expect them."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from portmatrix import __version__
from portmatrix.errors import PortmatrixError
from portmatrix.watch.metrics import Metrics
from portmatrix.watch.watcher import Event
from support.paths import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int, host: str = "127.0.0.1") -> dict:
    text = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(family) -> dict:
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples}


@pytest.fixture
def metrics():
    m = Metrics(free_port())
    yield m
    m.close()


def port_of(m: Metrics) -> int:
    return m._server.server_address[1]


def test_names_types_and_values_as_prometheus_reads_them(metrics, demo_watch):
    watcher, events = demo_watch
    metrics.publish(
        packets=268,
        bytes=12345,
        dropped={"eth0": 3},
        backlog={"eth0": 0},
        active=watcher.active,
        verdicts={"allowed": 30, "unexpected-port": 3},
        open={("wrong-direction", "error"): 1},
        rules_up={"node-rpc": 1, "postgres": 0},
        last_packet=1_709_287_200.5,
        lag=0.25,
    )
    for e in events:
        metrics.announced(e)
    metrics.batch.observe(0.003)
    metrics.tick.observe(0.0002)
    got = scrape(port_of(metrics))
    kinds = {name: f.type for name, f in got.items() if name.startswith("portmatrix")}
    assert kinds == {
        "portmatrix_build_info": "gauge",
        "portmatrix_packets": "counter",
        "portmatrix_bytes": "counter",
        "portmatrix_capture_dropped_packets": "counter",
        "portmatrix_capture_backlog_packets": "gauge",
        "portmatrix_flows_active": "gauge",
        "portmatrix_flows_ended": "counter",
        "portmatrix_findings_announced": "counter",
        "portmatrix_findings_open": "gauge",
        "portmatrix_required_rule_up": "gauge",
        "portmatrix_last_packet_timestamp_seconds": "gauge",
        "portmatrix_processing_lag_seconds": "gauge",
        "portmatrix_batch_seconds": "histogram",
        "portmatrix_tick_seconds": "histogram",
    }
    # Counters are exposed with _total, as the text format requires.
    assert [s.name for s in got["portmatrix_packets"].samples] == ["portmatrix_packets_total"]
    assert samples(got["portmatrix_packets"]) == {(): 268}
    assert samples(got["portmatrix_bytes"]) == {(): 12345}
    assert samples(got["portmatrix_capture_dropped_packets"]) == {(("interface", "eth0"),): 3}
    assert samples(got["portmatrix_flows_ended"])[(("verdict", "unexpected-port"),)] == 3
    announced = samples(got["portmatrix_findings_announced"])
    assert sum(announced.values()) == len(events)
    assert announced[(("event", "new"), ("severity", "error"), ("verdict", "wrong-direction"))] == 1
    assert samples(got["portmatrix_required_rule_up"]) == {
        (("rule", "node-rpc"),): 1,
        (("rule", "postgres"),): 0,
    }
    (build,) = got["portmatrix_build_info"].samples
    assert build.value == 1 and build.labels["version"] == __version__
    batch = {s.name: s.value for s in got["portmatrix_batch_seconds"].samples if not s.labels}
    assert batch["portmatrix_batch_seconds_count"] == 1
    assert "process_resident_memory_bytes" in got  # the process collector, for RSS alerts


def test_a_scrape_reads_what_was_published_last(metrics):
    """The first scrape after packets came reads them (not a tick-old figure)."""
    metrics.publish(packets=44)
    assert samples(scrape(port_of(metrics))["portmatrix_packets"]) == {(): 44}
    metrics.publish(packets=45)
    assert samples(scrape(port_of(metrics))["portmatrix_packets"]) == {(): 45}


def test_a_finding_that_got_worse_counts_as_an_announcement_of_its_own(metrics, demo_watch):
    _, events = demo_watch
    first = events[0]
    metrics.announced(first)
    metrics.announced(Event("escalated", first.finding))
    got = samples(scrape(port_of(metrics))["portmatrix_findings_announced"])
    assert sorted(dict(k)["event"] for k in got) == ["escalated", "new"]


def test_served_on_the_loopback_only_by_default(metrics):
    assert metrics._server.server_address[0] == "127.0.0.1"
    addresses = [
        a for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET) if a[4][0]
    ]
    outside = {a[4][0] for a in addresses} - {"127.0.0.1", "127.0.1.1"}
    for host in outside:  # not reachable on the host's other addresses
        with pytest.raises(OSError):
            scrape(port_of(metrics), host)


def test_metrics_on_a_busy_port_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(PortmatrixError, match=r"cannot serve metrics on 127\.0\.0\.1:"):
            Metrics(s.getsockname()[1])


def test_an_address_not_of_this_host_is_a_clear_error():
    with pytest.raises(PortmatrixError, match=r"cannot serve metrics on 192\.0\.2\.1"):
        Metrics(free_port(), "192.0.2.1")


def test_every_metric_is_explained_in_the_service_guide(metrics, demo_watch):
    """docs/watch.md says what each portmatrix metric means: none served without."""
    guide = (REPO / "docs" / "watch.md").read_text(encoding="utf-8")
    metrics.publish(dropped={"eth0": 0}, backlog={"eth0": 0}, last_packet=1.0)
    names = {n for n in scrape(port_of(metrics)) if n.startswith("portmatrix_")}
    assert len(names) >= 14
    assert [n for n in sorted(names) if f"`{n}" not in guide] == []
