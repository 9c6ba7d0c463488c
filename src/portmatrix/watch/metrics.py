"""Prometheus metrics of a running watch, served over HTTP (prometheus_client is
imported only here, when asked for)."""

from __future__ import annotations

import time

from portmatrix.errors import CaptureSetupError
from portmatrix.watch.watcher import Watcher


class Metrics:
    """Prometheus metrics, served on a port (prometheus_client is imported only here)."""

    def __init__(self, port: int) -> None:
        from portmatrix.lazy import require

        prom = require("prometheus_client", extra="metrics")
        self.registry = prom.CollectorRegistry()
        g = lambda name, doc, *labels: prom.Gauge(  # noqa: E731
            f"portmatrix_{name}", doc, labels, registry=self.registry
        )
        self.packets = g("packets", "Packets read so far")
        self.bytes = g("bytes", "Bytes on the wire read so far")
        self.active = g("flows_active", "Flows in progress")
        self.finished = g("flows_finished", "Flows over and classified")
        self.findings = g("findings", "Findings announced", "verdict", "severity")
        self.drops = g("capture_drops", "Packets the capture or the interfaces dropped")
        self.lag = g("processing_lag_seconds", "Wall clock minus the newest packet's time")
        try:
            self._server, self._thread = prom.start_http_server(port, registry=self.registry)
        except OSError as exc:
            raise CaptureSetupError(
                f"cannot serve metrics: {exc.strerror}",
                where="--metrics-port",
                hint="choose a free port",
            ) from None

    def close(self) -> None:
        """Stop serving: the port is free again and the server thread is gone."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def update(self, w: Watcher, drops: int, wire_bytes: int) -> None:
        self.packets.set(w.counts.frames)
        self.bytes.set(wire_bytes)
        self.active.set(w.active)
        self.finished.set(w.flows_done)
        self.drops.set(drops)
        if w.last_ts:
            self.lag.set(max(0.0, time.time() - w.last_ts / 1e9))
        self.findings.clear()  # a finding that got worse leaves its old severity
        counts: dict[tuple[str, str], int] = {}
        for fid, sev in w.announced.items():
            verdict = w.verdict_of.get(fid, "")
            counts[(verdict, sev)] = counts.get((verdict, sev), 0) + 1
        for (verdict, sev), n in counts.items():
            self.findings.labels(verdict, sev).set(n)
