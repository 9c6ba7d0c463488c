"""Prometheus metrics of a running watch, as Prometheus users expect them.

Served on `--metrics-address` (127.0.0.1 unless told otherwise) and
`--metrics-port`, in a registry of its own with the process collector
(process_resident_memory_bytes, process_cpu_seconds_total, ...):

    portmatrix_build_info{version,python,compiled}              gauge, 1
    portmatrix_packets_total                                    counter
    portmatrix_bytes_total                                      counter, on the wire
    portmatrix_capture_dropped_packets_total{interface}         counter (watch.drops)
    portmatrix_capture_backlog_packets{interface}               gauge: offered, not read yet
    portmatrix_flows_active                                     gauge
    portmatrix_flows_ended_total{verdict}                       counter
    portmatrix_findings_announced_total{verdict,severity,event} counter
    portmatrix_findings_open{verdict,severity}                  gauge
    portmatrix_required_rule_up{rule}                           gauge: 1 established in
                                                                the window, 0 alarm
    portmatrix_last_packet_timestamp_seconds                    gauge
    portmatrix_processing_lag_seconds                           gauge: how old packets
                                                                are when analysed; 0 idle
    portmatrix_batch_seconds, portmatrix_tick_seconds           histograms

Counters are read at scrape time from what the watch loop last published
(`publish`, after every batch and tick), so a scrape never lags a tick behind.
The metrics server's own traffic is left out of the capture (see
`watch.service.capture_filter`): scrapes are not findings.
"""

from __future__ import annotations

import platform

from portmatrix.errors import CaptureSetupError

BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
TICK_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self, port: int, address: str = "127.0.0.1") -> None:
        import prometheus_client as prom
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from portmatrix import __version__
        from portmatrix.compiled import describe

        self._counter, self._gauge = CounterMetricFamily, GaugeMetricFamily
        prom.disable_created_metrics()  # no *_created series beside each histogram
        self.registry = prom.CollectorRegistry()
        prom.ProcessCollector(registry=self.registry)
        prom.PlatformCollector(registry=self.registry)
        self.batch = prom.Histogram(
            "portmatrix_batch_seconds",
            "Time to decode a batch of packets and add it to the flows",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.tick = prom.Histogram(
            "portmatrix_tick_seconds",
            "Time to end flows that are over and judge the live ones (once a second)",
            buckets=TICK_BUCKETS,
            registry=self.registry,
        )
        self.build = {
            "version": __version__,
            "python": platform.python_version(),
            "compiled": "yes" if "active" in describe() else "no",
        }
        self.snapshot: dict = {}
        self.announcements: dict[tuple[str, str, str], int] = {}
        self.registry.register(self)
        try:
            self._server, self._thread = prom.start_http_server(
                port, addr=address, registry=self.registry
            )
        except OSError as exc:
            raise CaptureSetupError(
                f"cannot serve metrics on {address}:{port}: {exc.strerror or exc}",
                where="--metrics-port",
                hint="choose a free port (and an address of this host with --metrics-address)",
            ) from None

    def close(self) -> None:
        """Stop serving: the port is free again and the server thread is gone."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def publish(self, **values) -> None:
        """What scrapes read from now on (the loop's figures; replaced, not mutated)."""
        self.snapshot = {**self.snapshot, **values}

    def announced(self, event) -> None:
        f = event.finding
        key = (f.verdict, f.severity, event.kind)
        self.announcements = {**self.announcements, key: self.announcements.get(key, 0) + 1}

    def collect(self):
        """The portmatrix metrics, for the registry (called on the server thread)."""
        s, counter, gauge = self.snapshot, self._counter, self._gauge
        info = gauge("portmatrix_build_info", "portmatrix's version", labels=list(self.build))
        info.add_metric(list(self.build.values()), 1)
        yield info
        for name, doc, key in (
            ("portmatrix_packets", "Packets analysed", "packets"),
            ("portmatrix_bytes", "Bytes on the wire of the packets analysed", "bytes"),
        ):
            yield counter(name, doc, value=s.get(key, 0))
        for name, doc, key, kind in (
            (
                "portmatrix_capture_dropped_packets",
                "Packets the capture or the interface lost (each once)",
                "dropped",
                counter,
            ),
            (
                "portmatrix_capture_backlog_packets",
                "Packets offered to the capture and not read yet",
                "backlog",
                gauge,
            ),
        ):
            family = kind(name, doc, labels=["interface"])
            for iface, n in s.get(key, {}).items():
                family.add_metric([iface], n)
            yield family
        yield gauge("portmatrix_flows_active", "Flows in progress", value=s.get("active", 0))
        ended = counter("portmatrix_flows_ended", "Flows over and judged", labels=["verdict"])
        for verdict, n in s.get("verdicts", {}).items():
            ended.add_metric([verdict], n)
        yield ended
        told = counter(
            "portmatrix_findings_announced",
            "Findings announced (new, escalated) and required services recovered",
            labels=["verdict", "severity", "event"],
        )
        for labels, n in self.announcements.items():
            told.add_metric(list(labels), n)
        yield told
        open_ = gauge(
            "portmatrix_findings_open",
            "Findings announced and standing",
            labels=["verdict", "severity"],
        )
        for labels, n in s.get("open", {}).items():
            open_.add_metric(list(labels), n)
        yield open_
        up = gauge(
            "portmatrix_required_rule_up",
            "1: the required rule had an established flow in the coverage window; 0: an alarm",
            labels=["rule"],
        )
        for rule, n in s.get("rules_up", {}).items():
            up.add_metric([rule], n)
        yield up
        if s.get("last_packet") is not None:
            yield gauge(
                "portmatrix_last_packet_timestamp_seconds",
                "Time of the newest packet analysed",
                value=s["last_packet"],
            )
        yield gauge(
            "portmatrix_processing_lag_seconds",
            "How old packets were when analysed (0 when nothing waits)",
            value=s.get("lag", 0.0),
        )
