"""`portmatrix watch` as a command: everything checked before capture starts, and
every process, thread, socket and file it starts owned on every path.

Outputs (-o, --jsonl, the --ring folder, the --metrics-port bind) are checked
or opened before dumpcap starts, so a typo never costs a capture. One
ExitStack owns the metrics server, the JSON lines file, dumpcap, the ring's
dumpcap and (in `loop.run_watch`) the signal handlers: whatever fails, they
are closed, stopped or killed in reverse order, and no child outlives the
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
    jsonl: str | None = None
    metrics_port: int | None = None
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


def run(opts: WatchOptions) -> int:
    """Watch until stopped; write the final report; the exit status."""
    from portmatrix import console
    from portmatrix.errors import ExitCode
    from portmatrix.files import check_writable, staged
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
    from portmatrix.watch.loop import Outputs, run_watch
    from portmatrix.watch.metrics import Metrics
    from portmatrix.watch.watcher import Watcher

    matrix = load_matrix(opts.rules)
    inv = load_inventory(opts.inventory, matrix) if opts.inventory else None
    outputs = plan_outputs(opts.outputs, opts.fmt)
    read = [*opts.rules, *([opts.inventory] if opts.inventory else [])]
    check_outputs(outputs, read)
    if opts.jsonl:
        check_writable(opts.jsonl, "--jsonl", read)
    if opts.ring_dir:
        prepare_ring(opts.ring_dir)
    from portmatrix.findings.model import Thresholds

    watcher = Watcher(matrix, inv, idle=opts.idle_timeout, thresholds=Thresholds(**opts.thresholds))
    with contextlib.ExitStack() as owned:
        metrics = None
        if opts.metrics_port:
            metrics = Metrics(opts.metrics_port)
            owned.callback(metrics.close)
        jsonl = None
        if opts.jsonl:
            jsonl = owned.enter_context(open(opts.jsonl, "a", encoding="utf-8"))
        ifaces = list(opts.ifaces)
        source, warning = open_live(ifaces, opts.bpf, opts.dumpcap, opts.buffer_size)
        owned.callback(source.kill)
        if warning:
            console.say(f"portmatrix: warning: {warning}")
        if opts.ring_dir:
            ring = start_ring(
                ifaces, opts.bpf, opts.dumpcap, opts.ring_dir, opts.ring_files, opts.ring_size
            )
            owned.callback(ring.stop)
        console.say(
            f"portmatrix: watching {', '.join(ifaces)} against {', '.join(matrix.files)}"
            + (f" for {opts.duration:g} s" if opts.duration else " until Ctrl-C")
        )
        result, failure = run_watch(
            source,
            watcher,
            Outputs(console.say, jsonl, metrics),
            duration=opts.duration,
            report_every=opts.report_every,
        )
    import datetime as dt

    result.command = opts.command
    result.created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
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
