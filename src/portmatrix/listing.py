"""`portmatrix flows`: the flows of captures, narrowed, in a table, CSV or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FlowsOptions:
    inputs: tuple[str, ...]
    fmt: str = "table"
    output: str | None = None
    jobs: int = 1
    dask: str | None = None
    quiet: bool = False
    filters: dict = field(default_factory=dict)  # since, until, hosts, ports


def run_command(opts: FlowsOptions) -> int:
    from portmatrix import console
    from portmatrix.files import check_writable, write_text
    from portmatrix.flows.filters import FlowFilter
    from portmatrix.flows.from_captures import read_traffic
    from portmatrix.report.flow_rows import flow_columns
    from portmatrix.report.flows_view import FORMATS
    from portmatrix.report.progress import progress
    from portmatrix.sources.inputs import expand_inputs, skipped_notice, total_size

    filters = FlowFilter(**opts.filters)  # checked before anything is read
    inputs = expand_inputs(opts.inputs)
    if opts.output:
        check_writable(opts.output, "--output", inputs)
    with progress(total_size(inputs), not opts.quiet) as on_batch:
        whole = read_traffic(inputs, on_batch=on_batch, jobs=opts.jobs, dask=opts.dask)
    traffic = whole.narrowed(filters)
    remarks = [skipped_notice(inputs), filters.missed(whole.first_ts, whole.last_ts)]
    if filters.active and len(whole.flows) and not len(traffic.flows) and not remarks[1]:
        remarks.append(f"no flow matches the filters ({filters.describe()})")
    traffic.remarks = [r for r in remarks if r]
    columns = flow_columns(traffic.flows, len(inputs) > 1, traffic.captures)
    text = FORMATS[opts.fmt](columns, traffic)
    if opts.output is None:
        console.out(text)
    else:
        write_text(opts.output, text)
        if not opts.quiet:
            console.say(f"portmatrix: wrote {opts.output} ({opts.fmt}): {len(traffic.flows)} flows")
    return 0
