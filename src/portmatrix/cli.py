"""The `portmatrix` command: parse options, call the library, map errors to exit codes.

Nothing heavy is imported at module level, so `portmatrix --help` stays fast:
each command imports what it needs when it runs.
"""

from __future__ import annotations

import shutil
import sys

import click

from portmatrix import __version__
from portmatrix.errors import ExitCode, PortmatrixError


class _Group(click.Group):
    """Turns PortmatrixError into one line on stderr and exit status 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PortmatrixError as exc:
            if ctx.params.get("traceback"):
                raise
            click.echo(f"portmatrix: error: {exc}", err=True)
            ctx.exit(ExitCode.BAD_INPUT)
        except BrokenPipeError:
            sys.stderr.close()
            ctx.exit(ExitCode.OK)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="portmatrix")
@click.option("--traceback", is_flag=True, help="Show the Python traceback of an error.")
def main(traceback: bool) -> None:
    """Check real network traffic against an allowed port matrix."""


@main.group()
def rules() -> None:
    """Show and lint matrices (bundled by name, or YAML files)."""


_FORMATS_SHOW = ("table", "json", "csv", "markdown")


@rules.command("show")
@click.argument("matrices", nargs=-1, required=True, metavar="NAME|PATH...")
@click.option("--role", help="Only rules whose `from` or `to` is this role.")
@click.option("--port", type=click.IntRange(0, 65535), help="Only rules covering this port.")
@click.option(
    "--format", "fmt", type=click.Choice(_FORMATS_SHOW), default="table", show_default=True
)
def rules_show(matrices: tuple[str, ...], role: str | None, port: int | None, fmt: str) -> None:
    """Show the compiled (layered) matrix."""
    from portmatrix.policy.matrix import load_matrix
    from portmatrix.report.matrix_view import FORMATS

    matrix = load_matrix(matrices)
    if role is not None and role not in matrix.roles and role != "any":
        raise PortmatrixError(
            f"unknown role {role!r}",
            where="--role",
            hint=f"roles: {', '.join(sorted(matrix.roles))}",
        )
    chosen = [
        r
        for r in matrix.rules
        if (role is None or role in (r.from_role, r.to_role)) and (port is None or r.has_port(port))
    ]
    click.echo(FORMATS[fmt](matrix, chosen), nl=False)


@rules.command("lint")
@click.argument("matrices", nargs=-1, required=True, metavar="NAME|PATH...")
@click.option("--inventory", type=click.Path(dir_okay=False), help="Site inventory to check too.")
def rules_lint(matrices: tuple[str, ...], inventory: str | None) -> None:
    """Report problems in matrices (and an inventory). Exit 0 clean, 1 findings, 2 unreadable."""
    import datetime as dt

    from portmatrix.policy.inventory import collect_inventory
    from portmatrix.policy.lint import lint
    from portmatrix.policy.matrix import collect_matrix

    matrix = collect_matrix(matrices)
    inv = collect_inventory(inventory, matrix) if inventory else None
    problems = lint(matrix, inv, dt.date.today())
    for problem in problems:
        click.echo(f"{problem.severity}: {problem}")
    errors = sum(p.severity == "error" for p in problems)
    if errors:
        click.echo(
            f"portmatrix: error: {errors} error(s): the files cannot be used as they are", err=True
        )
        sys.exit(ExitCode.BAD_INPUT)
    names = ", ".join(matrix.files) + (f" with {inventory}" if inventory else "")
    click.echo(
        f"{len(problems)} problem(s) in {names}: {len(matrix.rules)} rules, "
        f"{len(matrix.roles)} roles, {len(matrix.exceptions)} exceptions"
    )
    sys.exit(ExitCode.FINDINGS if problems else ExitCode.OK)


_FORMATS_FLOWS = ("table", "csv", "json", "jsonl")
# lookup.VERDICTS, copied so that --help loads no numpy (a test keeps them equal)
_VERDICTS = ("allowed", "wrong-direction", "unexpected-source", "unexpected-port", "out-of-scope")


def _filter_options(judged: bool):
    """--since/--until/--host/--port (and for judged flows --verdict/--role)."""

    def decorate(command):
        options = [
            click.option(
                "--since",
                metavar="TIME",
                help="Only flows active at or after TIME: ISO 8601 (UTC if no zone) "
                "or +OFFSET from the capture start (+90s, +10m, +2h).",
            ),
            click.option("--until", metavar="TIME", help="Only flows that began by TIME."),
            click.option(
                "--host",
                "hosts",
                multiple=True,
                metavar="ADDR|CIDR",
                help="Only flows with this host at either end (repeatable).",
            ),
            click.option(
                "--port",
                "ports",
                multiple=True,
                type=click.IntRange(0, 65535),
                help="Only flows with this port at either end (repeatable).",
            ),
        ]
        if judged:
            options += [
                click.option(
                    "--verdict",
                    "verdicts",
                    multiple=True,
                    type=click.Choice(_VERDICTS),
                    help="Only flows with this verdict.",
                ),
                click.option(
                    "--role",
                    "roles",
                    multiple=True,
                    metavar="ROLE",
                    help="Only flows with this role at either end.",
                ),
            ]
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _reading_options(command):
    """--jobs, --dask and --quiet: how captures are read."""
    from portmatrix.sources.workers import PER_PROCESS, usable_cpus

    command = click.option(
        "--quiet", "-q", is_flag=True, help="No progress bar (there is none when stderr is piped)."
    )(command)
    command = click.option(
        "--dask",
        metavar="tcp://HOST:8786",
        help="Read the files on this Dask cluster (pip install 'portmatrix[dask]').",
    )(command)
    return click.option(
        "--jobs",
        "-j",
        type=click.IntRange(1, 256),
        default=usable_cpus(),
        show_default="usable CPUs",
        help=f"Processes reading files in parallel, at most (one per {PER_PROCESS >> 20} MB "
        "of input).",
    )(command)


@main.command("flows")
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option(
    "--format", "fmt", type=click.Choice(_FORMATS_FLOWS), default="table", show_default=True
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Write here instead of standard output.",
)
@_reading_options
@_filter_options(judged=False)
def flows_cmd(captures, fmt, output, jobs, dask, quiet, since, until, hosts, ports) -> None:
    """List the flows in captures (pcap, pcapng, .gz, or - for stdin)."""
    from portmatrix.flows.filters import FlowFilter
    from portmatrix.flows.from_captures import read_traffic
    from portmatrix.report.flow_rows import flow_columns
    from portmatrix.report.flows_view import FORMATS
    from portmatrix.report.progress import progress
    from portmatrix.sources.inputs import expand_inputs, total_size

    paths = expand_inputs(captures)
    with progress(total_size(paths), not quiet) as on_batch:
        traffic = read_traffic(paths, on_batch=on_batch, jobs=jobs, dask=dask)
    traffic = traffic.narrowed(FlowFilter(since, until, hosts, ports))
    columns = flow_columns(traffic.flows, len(paths) > 1, traffic.captures)
    _write(FORMATS[fmt](columns, traffic), output)


def _write(text: str, output: str | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise PortmatrixError(f"cannot write: {exc.strerror}", file=output) from None


_FORMATS_CHECK = ("text", "json", "jsonl", "csv", "markdown", "html")


def _matrix_options(command):
    """--rules (repeatable, layered) and --inventory."""
    command = click.option(
        "--inventory",
        type=click.Path(dir_okay=False),
        help="Site inventory: which addresses hold each role.",
    )(command)
    return click.option(
        "--rules",
        "rules_",
        multiple=True,
        required=True,
        metavar="NAME|PATH",
        help="Matrix to check against; repeat to layer site files on a vendor matrix.",
    )(command)


def _report_options(command):
    """--format, --output and --fail-on of a check report."""
    command = click.option(
        "--fail-on",
        type=click.Choice(("error", "warning", "never")),
        default="error",
        show_default=True,
        help="Exit 1 when a finding is at least this severe.",
    )(command)
    command = click.option(
        "--output", "-o", type=click.Path(dir_okay=False), help="Write the report here."
    )(command)
    return click.option(
        "--format", "fmt", type=click.Choice(_FORMATS_CHECK), default="text", show_default=True
    )(command)


@main.command("check")
@click.argument("captures", nargs=-1, metavar="CAPTURE...")
@click.option(
    "--zeek",
    "zeek_logs",
    multiple=True,
    type=click.Path(),
    help="Zeek conn.log files (TSV or JSON, .gz, rotated: a folder or glob) as "
    "the flows, instead of captures.",
)
@_matrix_options
@_report_options
@click.option(
    "--flows",
    "flows_out",
    type=click.Path(dir_okay=False),
    help="Also write every flow with its verdict and rule (.csv, .json or .parquet).",
)
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False),
    help="A previous JSON report: show only findings that are not in it.",
)
@_reading_options
@_filter_options(judged=True)
def check_cmd(
    captures,
    zeek_logs,
    rules_,
    inventory,
    fmt,
    output,
    fail_on,
    flows_out,
    baseline,
    jobs,
    dask,
    quiet,
    since,
    until,
    hosts,
    ports,
    verdicts,
    roles,
) -> None:
    """Check captures against the matrix: a verdict for every flow, coverage of
    required services, findings by severity. Exit 0 clean, 1 findings, 2 bad input."""
    from portmatrix.check import run_check
    from portmatrix.flows.filters import FlowFilter
    from portmatrix.report.progress import progress
    from portmatrix.report.verdict_flows import FLOW_EXPORTS
    from portmatrix.sources.inputs import expand_inputs, total_size

    if flows_out and not flows_out.endswith(FLOW_EXPORTS):
        raise PortmatrixError(
            f"the flow export must end in {', '.join(FLOW_EXPORTS)}",
            where="--flows",
            file=flows_out,
        )
    if bool(captures) == bool(zeek_logs):
        raise click.UsageError("give capture files, or Zeek conn.log files with --zeek")
    paths = expand_inputs(captures or zeek_logs)
    with progress(total_size(paths), not quiet) as on_batch:
        result = run_check(
            paths,
            list(rules_),
            inventory,
            baseline,
            on_batch=on_batch,
            jobs=jobs,
            dask=dask,
            filters=FlowFilter(since, until, hosts, ports, verdicts, roles),
            zeek=bool(zeek_logs),
        )
    _write_report(result, fmt, output)
    if flows_out:
        from portmatrix.report.verdict_flows import write_flows

        write_flows(result, flows_out)
    sys.exit(result.exit_code(fail_on))


def _write_report(result, fmt: str, output: str | None) -> None:
    """A check (or watch) report in `fmt`; text in colour and to the width of a terminal."""
    if fmt == "text":
        from portmatrix.report.text import render_text

        tty = output is None and sys.stdout.isatty()
        width = shutil.get_terminal_size().columns if tty else 80
        text = render_text(result, color=tty, width=max(80, min(width, 120)))
    else:
        from portmatrix.report import CHECK_FORMATS

        text = CHECK_FORMATS[fmt](result)
    _write(text, output)


class _Duration(click.ParamType):
    """10s, 5m, 2h, 1d, or plain seconds."""

    name = "duration"

    def convert(self, value, param, ctx):
        from portmatrix.flows.filters import DURATION_UNITS

        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip().lower()
        unit = DURATION_UNITS.get(text[-1:], None)
        number = text[:-1] if unit else text
        try:
            seconds = float(number) * (unit or 1)
        except ValueError:
            self.fail(f"{value!r} is not a duration (e.g. 30s, 10m, 2h)", param, ctx)
        if seconds <= 0:
            self.fail(f"{value!r} must be more than zero", param, ctx)
        return seconds


@main.command("watch")
@click.option(
    "-i",
    "--interface",
    "ifaces",
    multiple=True,
    required=True,
    metavar="IFACE",
    help="Interface to capture on (repeat for several).",
)
@_matrix_options
@click.option("--filter", "bpf", metavar="BPF", help="Capture filter (libpcap syntax).")
@click.option("--duration", type=_Duration(), help="Stop after this long (e.g. 10m).")
@click.option(
    "--report-every",
    type=_Duration(),
    default="60s",
    show_default=True,
    help="How often to print a summary line.",
)
@click.option(
    "--idle-timeout",
    type=_Duration(),
    default="120s",
    show_default=True,
    help="A flow with no packet for this long is over.",
)
@click.option(
    "--jsonl",
    type=click.Path(dir_okay=False),
    help="Append each new finding here as a JSON line (ECS), flushed at once.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve Prometheus metrics on this port (pip install 'portmatrix[metrics]').",
)
@click.option(
    "--ring",
    "ring_dir",
    type=click.Path(file_okay=False),
    help="Also keep the raw traffic in a ring of pcapng files in this folder.",
)
@click.option("--ring-files", type=click.IntRange(2, 100000), default=10, show_default=True)
@click.option(
    "--ring-size",
    type=click.IntRange(1, 1 << 20),
    default=100,
    show_default=True,
    help="Size of each ring file, MB.",
)
@click.option("--dumpcap", type=click.Path(dir_okay=False), help="dumpcap to use.")
@click.option(
    "--buffer-size",
    type=click.IntRange(1, 1 << 16),
    metavar="MB",
    help="Kernel capture buffer (dumpcap -B).",
)
@_report_options
def watch_cmd(
    ifaces,
    rules_,
    inventory,
    bpf,
    duration,
    report_every,
    idle_timeout,
    jsonl,
    metrics_port,
    ring_dir,
    ring_files,
    ring_size,
    dumpcap,
    buffer_size,
    fmt,
    output,
    fail_on,
) -> None:
    """Monitor live traffic (a span port) against the matrix until stopped (Ctrl-C,
    SIGTERM or --duration); new findings as they appear, then the final report."""
    from portmatrix.policy.inventory import load_inventory
    from portmatrix.policy.matrix import load_matrix
    from portmatrix.sources.live import open_live, start_ring
    from portmatrix.watch.loop import Outputs, run_watch
    from portmatrix.watch.watcher import Watcher

    matrix = load_matrix(rules_)
    inv = load_inventory(inventory, matrix) if inventory else None
    watcher = Watcher(matrix, inv, idle=idle_timeout)

    def say(line: str) -> None:
        click.echo(line, err=True)

    source, warning = open_live(list(ifaces), bpf, dumpcap, buffer_size)
    if warning:
        say(f"portmatrix: warning: {warning}")
    ring = (
        start_ring(list(ifaces), bpf, dumpcap, ring_dir, ring_files, ring_size)
        if ring_dir
        else None
    )
    say(
        f"portmatrix: watching {', '.join(ifaces)} against {', '.join(matrix.files)}"
        + (f" for {duration:g} s" if duration else " until Ctrl-C")
    )
    try:
        result, failure = run_watch(
            source,
            watcher,
            Outputs(say, jsonl, metrics_port),
            duration=duration,
            report_every=report_every,
        )
    finally:
        if ring is not None:
            ring.stop()
    _write_report(result, fmt, output)
    if failure:
        click.echo(
            f"portmatrix: error: the capture stopped: {failure} — the report covers "
            "what was captured until then",
            err=True,
        )
        sys.exit(ExitCode.BAD_INPUT)
    sys.exit(result.exit_code(fail_on))


@main.command("evidence")
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option(
    "--finding",
    "finding_ids",
    multiple=True,
    metavar="ID",
    help="The packets of this finding (an id from a check report; repeatable).",
)
@click.option(
    "--verdict",
    "verdicts",
    multiple=True,
    type=click.Choice(_VERDICTS),
    help="The packets of every flow with this verdict.",
)
@click.option(
    "--flow",
    "flow_specs",
    multiple=True,
    metavar='"PROTO A:P -> B:Q"',
    help='The packets of this flow, e.g. "tcp 10.0.0.1:40000 -> 10.0.0.2:22".',
)
@click.option(
    "--rules",
    "rules_",
    multiple=True,
    metavar="NAME|PATH",
    help="The matrix (needed with --finding and --verdict).",
)
@click.option("--inventory", type=click.Path(dir_okay=False))
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False),
    help="The evidence pcapng; a sidecar OUTPUT.json says where each packet came from.",
)
def evidence_cmd(captures, finding_ids, verdicts, flow_specs, rules_, inventory, output) -> None:
    """Write the packets of chosen flows (both directions, the ICMP errors about them)
    from the captures into one pcapng, in time order, with a JSON sidecar."""
    import numpy as np

    from portmatrix.evidence import flows_matching, flows_of_findings, write_evidence
    from portmatrix.sources.inputs import expand_inputs

    if not (finding_ids or verdicts or flow_specs):
        raise click.UsageError("choose flows with --finding, --verdict or --flow")
    if (finding_ids or verdicts) and not rules_:
        raise click.UsageError("--finding and --verdict need --rules (and --inventory)")
    paths = expand_inputs(captures)
    findings: list[dict] = []
    if rules_:
        from portmatrix.check import run_check

        result = run_check(paths, list(rules_), inventory)
        flows = result.traffic.flows
        chosen, findings = flows_of_findings(result, list(finding_ids))
        if verdicts:
            from portmatrix.policy.lookup import VERDICTS

            codes = [VERDICTS.index(v) for v in verdicts]
            chosen |= np.isin(result.classified.verdict, codes)
    else:
        from portmatrix.flows.from_captures import read_traffic

        flows = read_traffic(paths).flows
        chosen = np.zeros(len(flows), bool)
    for spec in flow_specs:
        chosen |= flows_matching(flows, spec)
    doc = write_evidence(output, paths, flows.take(chosen), findings)
    click.echo(
        f"{len(doc['packets'])} packets of {len(doc['flows'])} flows written to "
        f"{output} (sources and frames in {output}.json)",
        err=True,
    )
