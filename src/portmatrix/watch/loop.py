"""The `watch` loop: a live source feeding a Watcher, with its outputs.

A reader thread takes batches from the capture; the main loop decodes them,
ticks the watcher once a second (new findings out at once: a line on the
terminal, an ECS object appended and flushed to the JSON lines file), prints a
summary every `report_every` seconds, and stops on SIGINT, SIGTERM, the
duration, or the capture ending. It then returns the final report.
"""

from __future__ import annotations

import json
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from portmatrix.decode import decode
from portmatrix.decode.dns import learn
from portmatrix.report.formats import ecs_finding
from portmatrix.sources.live import kernel_drops
from portmatrix.watch.lines import event_line, summary_line
from portmatrix.watch.metrics import Metrics
from portmatrix.watch.watcher import Event, Watcher, WatchResult

_END = object()


@dataclass
class Outputs:
    """Where a watch reports: lines for the terminal, JSON lines, metrics."""

    say: Callable[[str], None]
    jsonl: str | None = None
    metrics_port: int | None = None


def run_watch(
    source, watcher: Watcher, out: Outputs, *, duration: float | None, report_every: float
) -> tuple[WatchResult, str]:
    """Watch until stopped; (final report, why the capture failed or "")."""
    batches: queue.Queue = queue.Queue(maxsize=64)

    def read() -> None:
        try:
            for raw in source.batches():
                batches.put(raw)
        except BaseException as exc:
            batches.put(exc)
        batches.put(_END)

    threading.Thread(target=read, daemon=True).start()
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    jsonl = open(out.jsonl, "a", encoding="utf-8") if out.jsonl else None  # noqa: SIM115
    metrics = Metrics(out.metrics_port) if out.metrics_port else None
    drops_at_start = kernel_drops(source.ifaces)
    wire_bytes = 0
    start = time.monotonic()
    next_tick, next_report = start + 1.0, start + report_every
    failure = ""
    stopping = False
    try:
        while True:
            try:
                item = batches.get(timeout=0.2)
            except queue.Empty:
                item = None
            if item is _END:
                break
            if isinstance(item, BaseException):
                failure = str(item)
                break
            if item is not None:
                rows, counts = decode(item, label=source.info.label)
                watcher.add(rows, counts, learn(item, rows, watcher.role_map.hostnames))
                wire_bytes += int(item.wirelen.sum())
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + 1.0
                for event in watcher.tick(max(time.time_ns(), watcher.last_ts or 0)):
                    _emit(event, out, jsonl, watcher)
                drops = kernel_drops(source.ifaces) - drops_at_start
                if metrics:
                    metrics.update(watcher, drops, wire_bytes)
            if now >= next_report:
                next_report = now + report_every
                out.say(summary_line(watcher, kernel_drops(source.ifaces) - drops_at_start))
            if not stopping and (stop.is_set() or (duration and now - start >= duration)):
                stopping = True  # let the capture end cleanly: the rest still arrives
                source.stop()
        failure = failure or source.died
        result = watcher.finish([source.info], max(0, kernel_drops(source.ifaces) - drops_at_start))
        for event in watcher.final_events(result):
            _emit(event, out, jsonl, watcher)
        return result, failure
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if jsonl:
            jsonl.close()
        source.kill()


def _emit(event: Event, out: Outputs, jsonl, watcher: Watcher) -> None:
    out.say(event_line(event))
    if jsonl:
        record = ecs_finding(event.finding.to_dict(), watcher.matrix.name)
        record["event"]["reason"] = event.kind
        jsonl.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
        jsonl.flush()
