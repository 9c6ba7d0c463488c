"""`portmatrix flows`: the flows of captures or flow records, narrowed, in a table,
CSV or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FlowsOptions:
    inputs: tuple[str, ...]
    fmt: str | None = None
    outputs: tuple[str, ...] = ()
    jobs: int = 1
    dask: str | None = None
    quiet: bool = False
    filters: dict = field(default_factory=dict)  # since, until, hosts, ports
    apps: bool = False  # label every flow listed with the application its payload shows
    flowlog: bool = False  # the inputs are flow records (records.formats)
    flowlog_format: str | None = None  # ... all of this format, else detected per file
    zeek: bool = False  # (check's --zeek; `flows` reads conn.log as --flowlog files)


FLOWS_OF_SUFFIX = {".txt": "table", ".csv": "csv", ".json": "json", ".jsonl": "jsonl"}
FLOWS_OF_SUFFIX[".ndjson"] = "jsonl"


def _app_columns(inputs: list[str], traffic) -> dict[str, list]:
    """The app and app_details columns of every flow listed (`flows --app`)."""
    from portmatrix.apps.findings import unreadable_notice
    from portmatrix.apps.labels import Labels, label_flows
    from portmatrix.report.verdict_flows import app_columns

    if notice := unreadable_notice(inputs):
        traffic.remarks.append(notice)
        return app_columns(Labels(), len(traffic.flows))
    labels = label_flows(inputs, traffic.flows)
    traffic.remarks.extend(labels.notices)
    return app_columns(labels, len(traffic.flows))


def run_command(opts: FlowsOptions) -> int:
    from portmatrix import console
    from portmatrix.check import Reading, expand, read_inputs, records_format
    from portmatrix.files import staged
    from portmatrix.flows.filters import FlowFilter
    from portmatrix.report.flow_rows import flow_columns
    from portmatrix.report.flows_view import FORMATS
    from portmatrix.report.outputs import check_outputs, plan_outputs
    from portmatrix.report.progress import progress
    from portmatrix.sources.inputs import skipped_notice, total_size

    filters = FlowFilter(**opts.filters)  # checked before anything is read
    outputs = plan_outputs(opts.outputs, opts.fmt, FLOWS_OF_SUFFIX, default="table")
    records = records_format(opts)
    inputs = expand(opts, records)
    check_outputs(outputs, inputs)
    with progress(total_size(inputs), not opts.quiet) as on_batch:
        whole = read_inputs(inputs, Reading(on_batch, opts.jobs, opts.dask), records)
    traffic = whole.narrowed(filters)
    remarks = [skipped_notice(inputs), filters.missed(whole.first_ts, whole.last_ts)]
    if filters.active and len(whole.flows) and not len(traffic.flows) and not remarks[1]:
        remarks.append(f"no flow matches the filters ({filters.text()})")
    traffic.remarks = [r for r in remarks if r]
    columns = flow_columns(traffic.flows, len(inputs) > 1, traffic.captures, bool(records))
    if opts.apps:
        columns.update(_app_columns(inputs, traffic))
    with staged() as batch:
        for output in outputs:
            if output.path != "-":
                batch.write_text(output.path, FORMATS[output.fmt](columns, traffic))
    for output in outputs:
        if output.path == "-":
            console.out(FORMATS[output.fmt](columns, traffic))
    if not opts.quiet and not any(o.path == "-" and o.fmt == "table" for o in outputs):
        for notice in traffic.notices():  # not on the terminal's table: said here
            console.say(f"portmatrix: notice: {notice}")
    files = [o for o in outputs if o.path != "-"]
    if files and not opts.quiet:
        listed = ", ".join(f"{o.path} ({o.fmt})" for o in files)
        console.say(f"portmatrix: wrote {listed}: {len(traffic.flows)} flows")
    for error in whole.damaged:  # the rest was listed; these say why not all
        console.say(f"portmatrix: error: {error}")
    return 2 if whole.damaged else 0
