"""The `watch` loop: a live source feeding a Watcher, with its outputs.

A reader thread takes batches from the capture; the main loop decodes them,
ticks the watcher once a second (new findings out at once: a line on the
terminal, an ECS object appended and flushed to the JSON lines file), prints a
summary every `report_every` seconds, and stops on SIGINT, SIGTERM, the
duration, or the capture ending. It then returns the final report.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from portmatrix.decode import decode
from portmatrix.decode.dns import learn
from portmatrix.report.escape import json_line
from portmatrix.report.formats import ecs_finding, observer
from portmatrix.sources.live import kernel_drops
from portmatrix.watch.lines import event_line, summary_line
from portmatrix.watch.metrics import Metrics
from portmatrix.watch.watcher import Event, Watcher, WatchResult

_END = object()


@dataclass
class Outputs:
    """Where a running watch reports, all opened by its owner: lines for the
    terminal, the JSON lines file, the metrics."""

    say: Callable[[str], None]
    jsonl: TextIO | None = None
    metrics: Metrics | None = None


def run_watch(
    source, watcher: Watcher, out: Outputs, *, duration: float | None, report_every: float
) -> tuple[WatchResult, str]:
    """Watch until stopped (SIGINT, SIGTERM, `duration`, or the capture ending);
    (final report, why the capture failed or ""). The caller owns the source,
    the outputs and the signal handlers (see `watch.service`); this only reads
    and reports."""
    batches: queue.Queue = queue.Queue(maxsize=64)
    stop = threading.Event()

    def read() -> None:
        try:
            for raw in source.batches():
                while not stop.is_set():
                    try:
                        batches.put(raw, timeout=0.5)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:
            batches.put(exc)
        batches.put(_END)

    reader = threading.Thread(target=read, name="portmatrix-reader", daemon=True)
    reader.start()

    def on_signal(sig, _frame) -> None:
        if stop.is_set() and sig == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: quit now, without the report
        stop.set()
        out.say("portmatrix: stopping — writing the report (Ctrl-C again to quit without it)")

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _loop(source, watcher, out, batches, stop, duration, report_every)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop.set()


def _loop(source, watcher, out, batches, stop, duration, report_every):
    drops_at_start = kernel_drops(source.ifaces)
    wire_bytes = 0
    start = time.monotonic()
    next_tick, next_report = start + 1.0, start + report_every
    failure = ""
    stopping = False
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
                _emit(event, out, watcher, source.ifaces)
            if out.metrics:
                out.metrics.update(
                    watcher, kernel_drops(source.ifaces) - drops_at_start, wire_bytes
                )
        if now >= next_report:
            next_report = now + report_every
            out.say(summary_line(watcher, kernel_drops(source.ifaces) - drops_at_start))
        if not stopping and (stop.is_set() or (duration and now - start >= duration)):
            stopping = True  # let the capture end cleanly: the rest still arrives
            source.stop()
    failure = failure or source.died
    result = watcher.finish([source.info], max(0, kernel_drops(source.ifaces) - drops_at_start))
    if failure:
        result.notices.insert(
            0, f"the capture stopped: {failure}; this report covers what was captured until then"
        )
    for event in watcher.final_events(result):
        _emit(event, out, watcher, source.ifaces)
    return result, failure


def _emit(event: Event, out: Outputs, watcher: Watcher, ifaces=()) -> None:
    out.say(event_line(event))
    if out.jsonl:
        import datetime as dt

        record = ecs_finding(
            event.finding.to_dict(),
            watcher.matrix.name,
            when=watcher.now_text(),
            created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            observer=observer(ifaces),
        )
        record["event"]["reason"] = event.kind
        out.jsonl.write(json_line(record) + "\n")
        out.jsonl.flush()
