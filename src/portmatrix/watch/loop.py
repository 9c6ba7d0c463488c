"""The `watch` loop: a live source feeding a Watcher, with its outputs.

A reader thread takes batches from the capture; the main loop decodes them and
once a second ticks the watcher (new findings out at once: a stamped line, an
ECS object in the JSON lines file, a syslog message), reads the drop counters
and publishes the metrics (once a second of packet time too, when packets come
faster than they happened). Every `report_every` it judges the required services
over their window, prints a summary (rates and drops since the last one) and
saves the state. SIGHUP reopens the log files. It stops on SIGINT, SIGTERM, the
duration, or the capture ending: after a stop, one more second of packets is
analysed (GRACE), and what still arrives is counted, not analysed, so a watch
far behind a flood still stops on time. It then returns the final report.

The watch's clock is packet time: the newest packet's, moved on by the wall
clock while nothing waits to be read. Flows are not ended for a silence that is
only the watch being behind, and a quiet link still ends them.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass

from portmatrix.decode import decode
from portmatrix.decode.dns import learn
from portmatrix.watch.drops import DropMeter
from portmatrix.watch.lines import Totals, summary_line
from portmatrix.watch.outputs import Outputs
from portmatrix.watch.watcher import Watcher, WatchResult

_END = object()
TICK = 1.0  # seconds between ticks
GRACE = 1.0  # seconds of analysis after a stop; later packets are counted only
STOP_WAIT = 10.0  # seconds to wait for the capture to end after a stop
SLICE = 32_768  # packets decoded at once
QUEUED = 2  # batches read ahead (up to 4 MB each); beyond, the kernel's buffer waits


@dataclass
class Schedule:
    duration: float | None = None
    report_every: float = 60.0


def run_watch(
    source,
    watcher: Watcher,
    out: Outputs,
    schedule: Schedule,
    meter: DropMeter | None = None,
    state=None,
) -> tuple[WatchResult, str]:
    """Watch until stopped (SIGINT, SIGTERM, the duration, or the capture ending);
    (final report, why the capture failed or ""). The caller owns the source, the
    outputs, the meter's counter and the state file (see `watch.service`); this
    reads, reports, and sets the signal handlers back as they were."""
    meter = meter or DropMeter(list(source.ifaces), None, 0)
    loop = _Loop(source, watcher, out, schedule, meter, state)
    handlers = {
        signal.SIGINT: loop.on_stop,
        signal.SIGTERM: loop.on_stop,
        signal.SIGHUP: loop.on_hup,
    }
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        return loop.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        loop.done.set()


class _Loop:
    def __init__(self, source, watcher, out, schedule, meter, state) -> None:
        self.source, self.watcher, self.out = source, watcher, out
        self.schedule, self.meter, self.state = schedule, meter, state
        self.batches: queue.Queue = queue.Queue(maxsize=QUEUED)
        self.stop = threading.Event()  # asked to stop (a signal)
        self.done = threading.Event()  # the loop is over: the reader gives up too
        self.hup = threading.Event()
        self.wire_bytes = 0
        self.lag = 0.0
        self.arrived = 0  # ns, wall clock: when the newest batch was read
        self.ticked_at = 0  # ns, packet time: the newest packet at the last tick
        self.first_batch = True
        self.totals = Totals(at=time.monotonic())
        self.drop_marks: deque[tuple[int, int]] = deque()  # (ns, drops) at each report

    # signals ---------------------------------------------------------------------

    def on_stop(self, sig, _frame) -> None:
        if self.stop.is_set() and sig == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: quit now, without the report
        self.stop.set()
        self.out.say("portmatrix: stopping — writing the report (Ctrl-C again to quit without it)")

    def on_hup(self, _sig, _frame) -> None:
        self.hup.set()  # reopened by the loop, between two lines

    # the loop --------------------------------------------------------------------

    def _read(self) -> None:
        try:
            for raw in self.source.batches():
                while True:
                    try:
                        self.batches.put(raw, timeout=0.5)
                        break
                    except queue.Full:
                        if self.done.is_set():
                            return
        except BaseException as exc:
            self.batches.put(exc)
        self.batches.put(_END)

    def run(self) -> tuple[WatchResult, str]:
        reader = threading.Thread(target=self._read, name="portmatrix-reader", daemon=True)
        reader.start()
        start = time.monotonic()
        next_tick, next_report = start + TICK, start + self.schedule.report_every
        failure, stopped_at, analysing = "", None, True
        while True:
            try:
                item = self.batches.get(timeout=0.2)
            except queue.Empty:
                item = None
            if item is _END:
                break
            if isinstance(item, BaseException):
                failure = str(item)
                break
            if item is not None:
                self._batch(item) if analysing else self._count_only(item)
            if self.hup.is_set():
                self.hup.clear()
                self.out.reopen()
            now = time.monotonic()
            if stopped_at is None:
                # Once a second of the wall clock, or of packet time when the capture
                # is read faster than it happened (a backlog, a replay): flows end
                # when their time comes, however fast the packets arrive.
                packets_ahead = (self.watcher.last_ts or 0) - self.ticked_at >= TICK * 1e9
                if now >= next_tick or packets_ahead:
                    next_tick = now + TICK
                    self._tick()
                if now >= next_report:
                    next_report = now + self.schedule.report_every
                    self._report()
                duration = self.schedule.duration
                if self.stop.is_set() or (duration and now - start >= duration):
                    stopped_at = now
                    self.meter.sample()  # what was offered until the stop
                    self.source.stop()  # the capture ends cleanly: the rest still arrives
            elif analysing and now - stopped_at > GRACE:
                analysing = False
            elif now - stopped_at > STOP_WAIT:
                failure = "the capture did not end within 10 s of the stop"
                break
        return self._finish(failure)

    def _batch(self, raw) -> None:
        """A batch read, decoded and added in slices of at most SLICE packets (a
        flood's small packets fill a block with a hundred thousand: the memory to
        decode them follows the slice, not the block)."""
        for lo in range(0, len(raw), SLICE):
            self._slice(raw if len(raw) <= SLICE else raw.take(slice(lo, lo + SLICE)))

    def _slice(self, raw) -> None:
        started = time.perf_counter()
        if self.first_batch:
            self.first_batch = False
            self.meter.check_names([i.name for i in self.source.info.interfaces])
        rows, counts = decode(raw, label=self.source.info.label)
        w = self.watcher
        w.add(rows, counts, learn(raw, rows, w.role_map.hostnames))
        self.wire_bytes += int(raw.wirelen.sum())
        self.meter.captured_batch(raw.iface, raw.ts)
        if len(raw.ts):
            self.lag = max(0.0, time.time() - int(raw.ts.max()) / 1e9)
            self.arrived = time.time_ns()
        if self.out.metrics:
            self.out.metrics.batch.observe(time.perf_counter() - started)
            self.out.metrics.publish(
                packets=w.counts.frames,
                bytes=self.wire_bytes,
                last_packet=w.last_ts / 1e9 if w.last_ts else None,
                lag=self.lag,
            )

    def _count_only(self, raw) -> None:
        self.meter.captured_batch(raw.iface, raw.ts)
        self.meter.unanalysed += len(raw.ts)

    def _now(self) -> int:
        """The watch's clock (ns): the newest packet's time, moved on by the wall
        clock since it arrived when nothing waits to be read (a quiet link still
        ends flows and misses services); the wall clock before any packet."""
        last = self.watcher.last_ts
        if last is None:
            return time.time_ns()
        if not self.batches.empty():
            return last
        return last + max(0, time.time_ns() - self.arrived)

    def _tick(self) -> None:
        started = time.perf_counter()
        self.ticked_at = self.watcher.last_ts or 0
        for event in self.watcher.tick(self._now()):
            self._emit(event)
        quiet = self.batches.empty()
        self.meter.sample(quiet=quiet)
        if quiet:
            self.lag = 0.0
        m = self.out.metrics
        if m:
            m.tick.observe(time.perf_counter() - started)
            m.publish(**self._figures())

    def _figures(self) -> dict:
        w = self.watcher
        open_: dict[tuple[str, str], int] = {}
        for fid, severity in dict(w.announced).items():
            key = (w.verdict_of.get(fid, ""), severity)
            open_[key] = open_.get(key, 0) + 1
        return {
            "active": w.active,
            "verdicts": dict(w.verdicts),
            "open": open_,
            "dropped": self.meter.by_interface(),
            "backlog": dict(zip(self.meter.ifaces, self.meter.backlog().tolist(), strict=True)),
            "rules_up": w.window.up() if w.window.started is not None else {},
            "lag": self.lag,
        }

    def _report(self) -> None:
        now = self._now()
        drops = self.meter.total()
        self.drop_marks.append((now, drops))
        while self.drop_marks and self.drop_marks[0][0] < now - self.watcher.window.window:
            self.drop_marks.popleft()
        weakened = drops > self.drop_marks[0][1] or self.watcher.one_way()
        for event in self.watcher.judge(now, weakened):
            self._emit(event)
        self.out.line(summary_line(self.watcher, self.meter, self.totals, self.wire_bytes))
        if self.state:
            self.state.save(self.watcher, self.meter)
        if self.out.metrics:
            self.out.metrics.publish(**self._figures())

    def _emit(self, event, final: bool = False) -> None:
        self.out.event(event, self.watcher.matrix.name, self.watcher.now_text(), final)

    def _finish(self, failure: str) -> tuple[WatchResult, str]:
        failure = failure or self.source.died
        if not failure:
            self.meter.settle_all()
        self.meter.from_statistics(self.source.info.stats)
        result = self.watcher.finish([self.source.info], self.meter.total(), self.meter.remarks())
        if failure:
            result.notices.insert(
                0,
                f"the capture stopped: {failure}; this report covers what was captured until then",
            )
        for event in self.watcher.final_events(result):
            self._emit(event, final=True)
        if self.state:
            self.state.save(self.watcher, self.meter)
        return result, failure
