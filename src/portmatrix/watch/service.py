"""`portmatrix watch` as a command: everything checked before capture starts, and
every process, thread, socket and file it starts owned on every path.

Outputs (-o, --jsonl, --log, --state, the --ring folder, the metrics bind, the
syslog server) are checked or opened, and a --state file read, before dumpcap
starts, so a typo never costs a capture. One ExitStack owns the metrics
server, the syslog connection, the log files, the drop counter, dumpcap, the
ring's dumpcap and (in `loop.run_watch`) the signal handlers: whatever fails,
they are closed, stopped or killed in reverse order, and no child outlives the
command (dumpcap is also told by the kernel to stop when portmatrix dies).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field


@dataclass
class WatchOptions:
    ifaces: tuple[str, ...]
    rules: tuple[str, ...]
    inventory: str | None = None
    bpf: str | None = None
    duration: float | None = None
    report_every: float = 60.0
    idle_timeout: float = 120.0
    half_open_timeout: float = 10.0
    coverage_window: float = 600.0
    jsonl: str | None = None
    log: str | None = None
    syslog: str | None = None
    metrics_port: int | None = None
    metrics_address: str = "127.0.0.1"
    state: str | None = None
    ring_dir: str | None = None
    ring_files: int = 10
    ring_size: int = 100
    dumpcap: str | None = None
    buffer_size: int | None = None
    fmt: str | None = None
    outputs: tuple[str, ...] = ()
    fail_on: str = "error"
    thresholds: dict = field(default_factory=dict)  # scan_ports, scan_hosts, many_sources
    command: list[str] | None = None


def capture_filter(opts: WatchOptions) -> str:
    """The capture filter: the user's, without the metrics server's own traffic (a
    scrape is not a finding)."""
    parts = [f"({opts.bpf})"] if opts.bpf else []
    if opts.metrics_port:
        address = opts.metrics_address
        host = "" if address in ("", "0.0.0.0", "::") else f" and host {address}"
        parts.append(f"not (tcp port {opts.metrics_port}{host})")
    return " and ".join(parts)


def run(opts: WatchOptions) -> int:
    """Watch until stopped; write the final report; the exit status."""
    import time

    from portmatrix import console
    from portmatrix.errors import ExitCode
    from portmatrix.files import check_writable, staged
    from portmatrix.findings.model import Thresholds
    from portmatrix.policy.inventory import load_inventory
    from portmatrix.policy.matrix import load_matrix
    from portmatrix.report.outputs import (
        check_outputs,
        plan_outputs,
        show_outputs,
        write_outputs,
        wrote_line,
    )
    from portmatrix.sources.live import open_live, prepare_ring, start_ring
    from portmatrix.sources.offered import open_counter
    from portmatrix.times import stamp
    from portmatrix.watch.drops import DropMeter
    from portmatrix.watch.loop import Schedule, run_watch
    from portmatrix.watch.outputs import LineFile, Outputs
    from portmatrix.watch.state import StateFile
    from portmatrix.watch.syslog import Syslog, parse_target
    from portmatrix.watch.watcher import Watcher

    matrix = load_matrix(opts.rules)
    inv = load_inventory(opts.inventory, matrix) if opts.inventory else None
    outputs = plan_outputs(opts.outputs, opts.fmt)
    read = [*opts.rules, *([opts.inventory] if opts.inventory else [])]
    check_outputs(outputs, read)
    for path, option in ((opts.jsonl, "--jsonl"), (opts.log, "--log"), (opts.state, "--state")):
        if path:
            check_writable(path, option, read)
    syslog_target = parse_target(opts.syslog) if opts.syslog else None
    if opts.ring_dir:
        prepare_ring(opts.ring_dir)
    watcher = Watcher(
        matrix,
        inv,
        idle=opts.idle_timeout,
        half_open=opts.half_open_timeout,
        thresholds=Thresholds(**opts.thresholds),
        coverage_window=opts.coverage_window,
    )
    state = StateFile(opts.state) if opts.state else None
    resumed = state.load(watcher) if state else False
    bpf = capture_filter(opts)
    ifaces = list(opts.ifaces)
    with contextlib.ExitStack() as owned:
        out = Outputs(console.say, ifaces=ifaces)
        out.report_shown = any(o.path == "-" for o in outputs)
        if opts.metrics_port:
            from portmatrix.watch.metrics import Metrics

            out.metrics = Metrics(opts.metrics_port, opts.metrics_address)
            owned.callback(out.metrics.close)
        if syslog_target:
            out.syslog = Syslog(syslog_target)
            owned.callback(out.syslog.close)
        for path, option, name in ((opts.jsonl, "--jsonl", "jsonl"), (opts.log, "--log", "log")):
            if path:
                setattr(out, name, LineFile(path, option))
                owned.callback(getattr(out, name).close)
        counter, why = open_counter(ifaces, bpf)
        if counter:
            owned.callback(counter.close)
        source, warning = open_live(ifaces, bpf or None, opts.dumpcap, opts.buffer_size)
        owned.callback(source.kill)
        if counter:
            counter.reset()  # dumpcap runs: count from here
        meter = DropMeter(ifaces, counter, time.time_ns())
        if warning:
            console.say(f"portmatrix: warning: {warning}")
        if opts.ring_dir:
            ring = start_ring(
                ifaces, bpf or None, opts.dumpcap, opts.ring_dir, opts.ring_files, opts.ring_size
            )
            owned.callback(ring.stop)
        console.say(
            f"portmatrix: watching {', '.join(ifaces)} against {', '.join(matrix.files)}"
            + (f" for {opts.duration:g} s" if opts.duration else " until Ctrl-C")
        )
        if resumed:
            console.say(
                f"portmatrix: resumed from {opts.state}: {len(watcher.announced)} findings "
                f"announced since {watcher.since} are not announced again"
            )
        if not counter:
            console.say(f"portmatrix: note: drops are known when the capture ends: {why}")
        result, failure = run_watch(
            source,
            watcher,
            out,
            Schedule(opts.duration, opts.report_every),
            meter,
            state,
        )
    result.command = opts.command
    result.created = stamp()
    with staged() as batch:
        written = write_outputs(result, outputs, batch)
    show_outputs(result, outputs)
    if written:
        console.say(wrote_line(written, result))
    if failure:
        console.say(
            f"portmatrix: error: the capture stopped: {failure} — the report covers "
            "what was captured until then"
        )
        return ExitCode.BAD_INPUT
    return result.exit_code(opts.fail_on)
