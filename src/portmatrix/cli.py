"""The `portmatrix` command: parse options, call a command module, nothing else.

One error boundary (`_Group.main`) turns every failure into one line
`portmatrix: error: WHERE: what — what to do` and an exit status from
`errors.ExitCode`. Nothing heavy is imported at module level, so `--help`
stays fast: each command imports what it needs when it runs.
"""

from __future__ import annotations

import gc
import os
import sys

# numpy's BLAS starts a thread per CPU when numpy is imported; nothing here does
# linear algebra, and on a busy or single CPU those threads cost a tenth of a
# second of every run (and a process that forks workers is safer without them).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click

from portmatrix import __version__
from portmatrix.errors import EXIT_HELP, EXIT_HELP_PLAIN, ExitCode, PortmatrixError

# Imports and reports make many objects and few cycles: the collector's default
# pace (every 700 allocations) spent a tenth of a 1M-packet check finding none.
# (Set before the commands import what they need.)
gc.set_threshold(100_000, 50, 50)

# policy.lookup.VERDICTS, copied so that --help loads no numpy (a test keeps them equal)
_VERDICTS = ("allowed", "wrong-direction", "unexpected-source", "unexpected-port", "out-of-scope")
_REPORT_FORMATS = ("text", "json", "jsonl", "csv", "markdown", "html", "suggestions")
# records.formats.FORMATS, copied likewise
_FLOWLOG_FORMATS = ("netflow", "aws", "azure", "gcp", "zeek")
_TRACEBACK = "--traceback"


def _say(line: str) -> None:
    from portmatrix.console import say

    say(line)


class _Group(click.Group):
    """The error boundary of every command (see the module docstring)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        args = list(sys.argv[1:] if args is None else args)
        show = _TRACEBACK in args  # the traceback too; the exit status stays what it is
        try:
            code = super().main(args, "portmatrix", complete_var, False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
            code = ExitCode.BAD_INPUT
        except click.UsageError as exc:
            _traceback(show)
            code = _usage_error(exc)
        except PortmatrixError as exc:
            _traceback(show)
            _say(f"portmatrix: error: {exc}")
            code = ExitCode.BAD_INPUT
        except (click.Abort, KeyboardInterrupt):
            _say("portmatrix: interrupted — no report was written")
            code = ExitCode.INTERRUPTED
        except BrokenPipeError:
            _quiet_broken_pipe()
            code = ExitCode.OK
        except click.ClickException as exc:
            _say(f"portmatrix: error: {exc.format_message()}")
            code = exc.exit_code
        except Exception as exc:
            _traceback(show)
            _say(
                f"portmatrix: error: internal error: {type(exc).__name__}: {exc} — this is a "
                "bug: rerun with --traceback and report it with the output"
            )
            code = ExitCode.INTERNAL
        code = 0 if code is None else int(code)
        if standalone_mode:
            sys.exit(code)
        return code


def _traceback(show: bool) -> None:
    if show:
        import traceback

        traceback.print_exc()


def _usage_error(exc: click.UsageError) -> int:
    """Click's usage errors in the same one-line form as every other error:
    `portmatrix: error: --option: what — fix` (the fix defaults to --help)."""
    ctx = exc.ctx
    command = "portmatrix " + " ".join(ctx.command_path.split()[1:]) if ctx else "portmatrix"
    param = getattr(exc, "param", None)
    if isinstance(exc, click.BadParameter) and param is not None and exc.message:
        where = (param.opts or [param.human_readable_name])[0]
        message = exc.message
    else:
        where = command.split(" ", 1)[1] if " " in command else ""
        message = exc.format_message()
    message = " ".join(message.split()).rstrip(".")
    if " — " not in message:
        message += f" — see {command.strip()} --help"
    _say(f"portmatrix: error: {where + ': ' if where else ''}{message}")
    return ExitCode.BAD_INPUT


def _quiet_broken_pipe() -> None:
    """The reader went away (`| head`): stop quietly, as other tools do."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_HELP,
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _, value: _version(ctx) if value else None,
    help="Show the version, and whether the compiled fast paths are active.",
)
@click.option(_TRACEBACK, is_flag=True, help="Show the Python traceback of an error.")
def main(traceback: bool) -> None:
    """Check real network traffic against an allowed port matrix."""


def _version(ctx: click.Context) -> None:
    from portmatrix.compiled import describe

    click.echo(f"portmatrix {__version__} ({describe()})")
    ctx.exit(ExitCode.OK)


# Option types ---------------------------------------------------------------------


class _Duration(click.ParamType):
    """Seconds or compound units: 90, 30s, 10m, 1h30m, 2d."""

    name = "duration"

    def convert(self, value, param, ctx):
        from portmatrix.times import DURATION_HINT, parse_duration

        if isinstance(value, int | float):
            return float(value)
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.fail(f"{exc} — {DURATION_HINT}", param, ctx)
        if seconds <= 0:
            self.fail(f"{value!r} must be more than zero", param, ctx)
        return seconds


class _Time(click.ParamType):
    """ISO 8601, epoch seconds, or +OFFSET from the capture's start: checked as typed."""

    name = "time"

    def convert(self, value, param, ctx):
        from portmatrix.times import INSTANT_HINT, parse_instant

        try:
            parse_instant(value)
        except ValueError as exc:
            self.fail(f"{exc} — {INSTANT_HINT}", param, ctx)
        return value


class _OneOf(click.Choice):
    """A choice in any case (AWS is aws) that suggests the closest value for a typo."""

    def convert(self, value, param, ctx):
        if value in self.choices:
            return value
        folded = {str(c).lower(): c for c in self.choices}
        if str(value).lower() in folded:
            return folded[str(value).lower()]
        import difflib

        close = difflib.get_close_matches(str(value), list(self.choices), n=1, cutoff=0.5)
        guess = f" — did you mean {close[0]}?" if close else ""
        self.fail(f"{value!r} is not one of {', '.join(self.choices)}{guess}", param, ctx)


# rules ----------------------------------------------------------------------------


@main.group()
def rules() -> None:
    """Show and lint matrices (bundled by name, or YAML files)."""


@rules.command("show", epilog=EXIT_HELP_PLAIN)
@click.argument("matrices", nargs=-1, required=True, metavar="NAME|PATH...")
@click.option("--role", help="Only rules whose `from` or `to` is this role.")
@click.option("--port", type=click.IntRange(0, 65535), help="Only rules covering this port.")
@click.option(
    "--format",
    "fmt",
    type=_OneOf(("table", "json", "csv", "markdown")),
    default="table",
    show_default=True,
)
def rules_show(matrices: tuple[str, ...], role: str | None, port: int | None, fmt: str) -> int:
    """Show the compiled (layered) matrix."""
    from portmatrix.matrices import show

    return show(matrices, role, port, fmt)


@rules.command("lint")
@click.argument("matrices", nargs=-1, required=True, metavar="NAME|PATH...")
@click.option("--inventory", type=click.Path(dir_okay=False), help="Site inventory to check too.")
def rules_lint(matrices: tuple[str, ...], inventory: str | None) -> int:
    """Report problems in matrices (and an inventory). Exit 0 clean, 1 findings, 2 unreadable."""
    from portmatrix.matrices import lint

    return lint(matrices, inventory)


@rules.command("diff")
@click.argument("old", metavar="A")
@click.argument("new", metavar="B")
@click.option(
    "--inventory",
    type=click.Path(dir_okay=False),
    help="Site inventory: mark the differences on roles that hold no address there.",
)
@click.option(
    "--format",
    "fmt",
    type=_OneOf(("text", "markdown", "json")),
    default="text",
    show_default=True,
)
def rules_diff(old: str, new: str, inventory: str | None, fmt: str) -> int:
    """What B allows that A does not, and the reverse: per role pair and protocol, the
    ports added, removed, and changed (who may open them, required), compared on the
    compiled matrices (order, ids and how ranges are split make no difference). A and
    B are a matrix (bundled name or file) or a layered stack, comma-separated:
    thoughtspot,site.yaml. Exit 0 the same, 1 they differ, 2 unreadable."""
    from portmatrix.matrices import diff

    return diff(old, new, inventory, fmt)


# Shared options -------------------------------------------------------------------


def _options(*decorators):
    def apply(command):
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


_TIME_HELP = (
    "ISO 8601 (UTC if no zone), epoch seconds, or +OFFSET from the capture start (+90s, +1h30m)."
)
_WINDOW_AND_HOSTS = _options(
    click.option("--since", type=_Time(), help=f"Only flows active at or after TIME: {_TIME_HELP}"),
    click.option("--until", type=_Time(), help="Only flows that began by TIME (same forms)."),
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
)
_VERDICT_AND_ROLE = _options(
    click.option(
        "--verdict",
        "verdicts",
        multiple=True,
        type=_OneOf(_VERDICTS),
        help="Only flows with this verdict.",
    ),
    click.option(
        "--role",
        "roles",
        multiple=True,
        metavar="ROLE",
        help="Only flows with this role at either end (checked against the matrix).",
    ),
)


def _jobs_default() -> int:
    from portmatrix.sources.workers import usable_cpus

    return usable_cpus()


_READING = _options(
    click.option(
        "--jobs",
        "-j",
        type=click.IntRange(1, 256),
        default=_jobs_default,
        show_default="usable CPUs",
        help="Processes reading files in parallel, at most.",
    ),
    click.option(
        "--dask",
        metavar="tcp://HOST:8786",
        help="Read the files on this Dask cluster (pip install 'portmatrix[dask]').",
    ),
    click.option(
        "--quiet", "-q", is_flag=True, help="No progress bar and no 'wrote' line on stderr."
    ),
)
_MATRIX = _options(
    click.option(
        "--rules",
        "rules_",
        multiple=True,
        required=True,
        metavar="NAME|PATH",
        help="Matrix to check against; repeat to layer site files on a vendor matrix.",
    ),
    click.option(
        "--inventory",
        type=click.Path(dir_okay=False),
        help="Site inventory: which addresses hold each role.",
    ),
)
_REPORT = _options(
    click.option(
        "--format",
        "fmt",
        type=_OneOf(_REPORT_FORMATS),
        help="Format of the report on standard output (text), or of a -o file whose "
        "name does not tell.",
    ),
    click.option(
        "--output",
        "-o",
        "outputs",
        multiple=True,
        metavar="FILE|-",
        help="Write the report here; repeat for several formats from one read "
        "(-o r.html -o r.json -o -), the format from each extension; - is the terminal.",
    ),
    click.option(
        "--fail-on",
        type=_OneOf(("error", "warning", "never")),
        default="error",
        show_default=True,
        help="Exit 1 when a finding is at least this severe.",
    ),
)
_ROLL_UPS = _options(
    click.option(
        "--scan-ports",
        type=click.IntRange(2),
        default=15,
        show_default=True,
        help="An initiator whose forbidden attempts failed on this many ports of one "
        "host is a scan (one finding).",
    ),
    click.option(
        "--scan-hosts",
        type=click.IntRange(2),
        default=25,
        show_default=True,
        help="... or on this many hosts on one port.",
    ),
    click.option(
        "--many-sources",
        type=click.IntRange(2),
        default=10,
        show_default=True,
        help="This many initiators with no role on one service (or forbidden ports "
        "between two roles) are one finding.",
    ),
)


def _thresholds(rest: dict) -> dict:
    return {k: rest.pop(k) for k in ("scan_ports", "scan_hosts", "many_sources")}


# flow records in (flows, check, learn) --------------------------------------------


def _one_kind_of_input(captures, flowlogs, flowlog_format, zeek_logs) -> None:
    given = sum(map(bool, (captures, flowlogs, zeek_logs)))
    if not given:
        raise click.UsageError(
            "no input: give capture files (pcap, pcapng, .gz, a folder), or flow records "
            "with --flowlog (Zeek conn.log with --zeek)"
        )
    if given > 1:
        raise click.UsageError(
            "give capture files, or flow records with --flowlog (Zeek conn.log with --zeek), "
            "not both — repeat --flowlog for several, or quote a glob: --flowlog 'logs/*.gz'"
        )
    if flowlog_format and not flowlogs:
        raise click.UsageError("--flowlog-format names the format of --flowlog files")


_FLOWLOG = _options(
    click.option(
        "--flowlog",
        "flowlogs",
        multiple=True,
        metavar="FILE|DIR|GLOB",
        help="Flow records as the flows, instead of captures (repeatable): AWS VPC, Azure "
        "and GCP flow logs, NetFlow/IPFIX in nfdump files, Zeek conn.log; each file's "
        "format is told from its content, folders are walked (S3 layouts too).",
    ),
    click.option(
        "--flowlog-format",
        type=_OneOf(_FLOWLOG_FORMATS),
        help="Read every --flowlog file as this format instead of telling it from the content.",
    ),
)
_ZEEK = click.option(
    "--zeek",
    "zeek_logs",
    multiple=True,
    type=click.Path(),
    help="Zeek conn.log files (TSV or JSON, .gz, rotated: a folder or glob) as "
    "the flows, instead of captures (as --flowlog with --flowlog-format zeek).",
)


# flows ----------------------------------------------------------------------------


@main.command("flows", epilog=EXIT_HELP_PLAIN)
@click.argument("captures", nargs=-1, metavar="CAPTURE...")
@_FLOWLOG
@click.option(
    "--format",
    "fmt",
    type=_OneOf(("table", "csv", "json", "jsonl")),
    help="Format on standard output (table), or of a -o file whose name does not tell.",
)
@click.option(
    "--output",
    "-o",
    "outputs",
    multiple=True,
    metavar="FILE|-",
    help="Write here (repeatable; the format from each extension: .txt .csv .json .jsonl; "
    "- is the terminal).",
)
@click.option(
    "--app",
    "apps",
    is_flag=True,
    help="Label every flow with the application its payload shows (ssh, tls with its "
    "SNI, http with its Host, ...): reads the captures a second time.",
)
@_READING
@_WINDOW_AND_HOSTS
def flows_cmd(
    captures, flowlogs, flowlog_format, fmt, outputs, apps, jobs, dask, quiet, **filters
) -> int:
    """List the flows in captures (pcap, pcapng, .gz, folders, globs, or - for stdin),
    or in flow records (--flowlog: each flow with the count of records it joins)."""
    from portmatrix.listing import FlowsOptions, run_command

    _one_kind_of_input(captures, flowlogs, flowlog_format, ())
    if apps and flowlogs:
        raise click.UsageError("--app reads payloads: give captures, not --flowlog")
    return run_command(
        FlowsOptions(
            captures or flowlogs,
            fmt,
            outputs,
            jobs,
            dask,
            quiet,
            filters,
            apps,
            flowlog=bool(flowlogs),
            flowlog_format=flowlog_format,
        )
    )


# check ----------------------------------------------------------------------------


@main.command("check", epilog=EXIT_HELP)
@click.argument("captures", nargs=-1, metavar="CAPTURE...")
@_FLOWLOG
@_ZEEK
@_MATRIX
@_REPORT
@click.option(
    "--flows",
    "flows_out",
    metavar="FILE",
    help="Also write every flow with its verdict and rule (.csv, .json or .parquet).",
)
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False),
    help="A previous JSON report: show only findings that are not in it.",
)
@click.option(
    "--what-if",
    "what_if",
    multiple=True,
    metavar="NAME|PATH",
    help="Also judge every flow under this matrix, in full (repeat to layer: --what-if "
    "thoughtspot --what-if draft.yaml), and report what would change; --fail-on "
    "applies to the changes too.",
)
@click.option(
    "--no-app",
    "no_app",
    is_flag=True,
    help="Do not label the flows behind findings with the application their payload "
    "shows (labelling reads their first packets again: TLS SNI, HTTP Host, SSH, ...).",
)
@_READING
@_WINDOW_AND_HOSTS
@_VERDICT_AND_ROLE
@_ROLL_UPS
def check_cmd(
    captures, flowlogs, flowlog_format, zeek_logs, rules_, inventory, fmt, outputs, fail_on, **rest
) -> int:
    """Check captures (or flow records) against the matrix: a verdict for every
    flow, coverage of required services, findings by severity."""
    from portmatrix.check import CheckOptions, run_command

    _one_kind_of_input(captures, flowlogs, flowlog_format, zeek_logs)
    reading = {
        k: rest.pop(k) for k in ("flows_out", "baseline", "what_if", "jobs", "dask", "quiet")
    }
    reading["apps"] = not rest.pop("no_app")
    thresholds = _thresholds(rest)
    return run_command(
        CheckOptions(
            inputs=captures or flowlogs or zeek_logs,
            rules=rules_,
            inventory=inventory,
            zeek=bool(zeek_logs),
            flowlog=bool(flowlogs),
            flowlog_format=flowlog_format,
            fmt=fmt,
            outputs=outputs,
            fail_on=fail_on,
            filters=rest,
            thresholds=thresholds,
            command=["portmatrix", *sys.argv[1:]],
            **reading,
        )
    )


# learn ----------------------------------------------------------------------------


@main.command("learn", epilog=EXIT_HELP)
@click.argument("captures", nargs=-1, metavar="CAPTURE...")
@_FLOWLOG
@_ZEEK
@click.option(
    "--inventory",
    type=click.Path(dir_okay=False),
    help="Site inventory: the roles the draft's rules are written in (addresses with "
    "no role get draft roles).",
)
@click.option(
    "--rules",
    "rules_",
    multiple=True,
    metavar="NAME|PATH",
    help="Base matrix (repeat to layer): the draft holds only what it does not allow, "
    "an additions file to layer on top.",
)
@click.option(
    "--output",
    "-o",
    default="-",
    metavar="FILE|-",
    help="Write the draft here (YAML); - is standard output.",
)
@click.option("--name", default="learned", show_default=True, help="The draft matrix's name.")
@click.option(
    "--min-flows",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Flows a rule needs; fewer are kept out, and listed.",
)
@click.option(
    "--min-hosts",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Distinct initiating hosts a rule needs; fewer are kept out, and listed.",
)
@click.option(
    "--range-min-ports",
    type=click.IntRange(2),
    default=8,
    show_default=True,
    help="Distinct ports before a dense run, or a pool of dynamic ports, becomes a range.",
)
@click.option(
    "--range-min-flows",
    type=click.IntRange(1),
    default=16,
    show_default=True,
    help="Flows over those ports before they become a range.",
)
@click.option(
    "--group-min",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    help="Addresses with no role that share a prefix (within a /24 or /64) before they "
    "form one draft role; fewer get a role each.",
)
@click.option(
    "--buckets",
    type=click.IntRange(2, 64),
    default=10,
    show_default=True,
    help="Equal time slices of the input's window, for --required-share.",
)
@click.option(
    "--required-share",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.9,
    show_default=True,
    help="A rule seen in at least this share of the time slices is marked required.",
)
@_READING
@_WINDOW_AND_HOSTS
def learn_cmd(
    captures, flowlogs, flowlog_format, zeek_logs, inventory, rules_, output, name, **rest
) -> int:
    """Draft a matrix from known-good traffic: role-level rules from the established
    flows, with each rule's evidence in a comment; what was not learned is listed."""
    from portmatrix.learn import LearnOptions, run_command
    from portmatrix.policy.learn import DraftOptions
    from portmatrix.policy.portsets import RangeOptions

    _one_kind_of_input(captures, flowlogs, flowlog_format, zeek_logs)
    draft = DraftOptions(
        min_flows=rest.pop("min_flows"),
        min_hosts=rest.pop("min_hosts"),
        ranges=RangeOptions(rest.pop("range_min_ports"), rest.pop("range_min_flows")),
        group_min=rest.pop("group_min"),
        buckets=rest.pop("buckets"),
        required_share=rest.pop("required_share"),
    )
    reading = {k: rest.pop(k) for k in ("jobs", "dask", "quiet")}
    return run_command(
        LearnOptions(
            inputs=captures or flowlogs or zeek_logs,
            inventory=inventory,
            rules=rules_,
            zeek=bool(zeek_logs),
            flowlog=bool(flowlogs),
            flowlog_format=flowlog_format,
            output=output,
            name=name,
            draft=draft,
            filters=rest,
            **reading,
        )
    )


# watch ----------------------------------------------------------------------------


def _watch_config(ctx: click.Context, _param, path: str | None) -> None:
    """--config: the file's options become the defaults the command line overrides."""
    if path:
        from portmatrix.watch.config import load

        ctx.default_map = {**(ctx.default_map or {}), **load(path, ctx)}


@main.command("watch", epilog=EXIT_HELP)
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    is_eager=True,
    expose_value=False,
    callback=_watch_config,
    help="Read options from this TOML file (keys: the long option names, e.g. "
    'report-every = "1m"); the command line overrides it.',
)
@click.option(
    "--print-config",
    is_flag=True,
    help="Show the options merged from --config and the command line, as TOML, and exit.",
)
@click.option(
    "-i",
    "--interface",
    "ifaces",
    multiple=True,
    required=True,
    metavar="IFACE",
    help="Interface to capture on (repeat for several).",
)
@_MATRIX
@click.option("--filter", "bpf", metavar="BPF", help="Capture filter (libpcap syntax).")
@click.option("--duration", type=_Duration(), help="Stop after this long (e.g. 10m, 1h30m).")
@click.option(
    "--report-every",
    type=_Duration(),
    default="60s",
    show_default=True,
    help="How often to judge required services, print a summary and save --state.",
)
@click.option(
    "--coverage-window",
    type=_Duration(),
    default="10m",
    show_default=True,
    help="A required service with no established flow for this long raises an alarm.",
)
@click.option(
    "--idle-timeout",
    type=_Duration(),
    default="120s",
    show_default=True,
    help="A flow with no packet for this long is over.",
)
@click.option(
    "--half-open-timeout",
    type=_Duration(),
    default="10s",
    show_default=True,
    help="... and one that got no answer at all (an unanswered SYN, a spoofed source).",
)
@click.option(
    "--jsonl",
    metavar="FILE",
    help="Append each new finding here as a JSON line (ECS), flushed at once; reopened on SIGHUP.",
)
@click.option(
    "--log",
    metavar="FILE",
    help="Append the live lines (findings, summaries) here too; reopened on SIGHUP.",
)
@click.option(
    "--syslog",
    metavar="[udp://|tcp://]HOST[:PORT]|SOCKET",
    help="Send each new finding as an RFC 5424 message (UDP unless told; port 514).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve Prometheus metrics on this port.",
)
@click.option(
    "--metrics-address",
    default="127.0.0.1",
    show_default=True,
    metavar="ADDR",
    help="... on this address (0.0.0.0: every interface).",
)
@click.option(
    "--state",
    metavar="FILE",
    help="Keep announced findings and counters here across restarts (saved every "
    "--report-every and on exit).",
)
@click.option(
    "--ring",
    "ring_dir",
    metavar="FOLDER",
    help="Also keep the raw traffic in a ring of pcapng files in this folder.",
)
@click.option(
    "--ring-files",
    type=click.IntRange(2, 100000),
    default=10,
    show_default=True,
    help="Files in the ring (the oldest is overwritten).",
)
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
@_REPORT
@_ROLL_UPS
@click.pass_context
def watch_cmd(ctx, print_config, ifaces, rules_, inventory, **rest) -> int:
    """Monitor live traffic (a span port) against the matrix until stopped (Ctrl-C,
    SIGTERM or --duration); new findings as they appear, then the final report."""
    if print_config:
        from portmatrix.watch.config import render

        click.echo(render(ctx, ctx.params), nl=False)
        return 0
    from portmatrix.watch.service import WatchOptions, run

    thresholds = _thresholds(rest)
    return run(
        WatchOptions(
            ifaces=ifaces,
            rules=rules_,
            inventory=inventory,
            thresholds=thresholds,
            command=["portmatrix", *sys.argv[1:]],
            **rest,
        )
    )


# evidence -------------------------------------------------------------------------


@main.command("evidence", epilog=EXIT_HELP_PLAIN)
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
    type=_OneOf(_VERDICTS),
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
@click.option(
    "--inventory",
    type=click.Path(dir_okay=False),
    help="Site inventory (with --rules): which addresses hold each role.",
)
@click.option(
    "--output",
    "-o",
    "outputs",
    required=True,
    multiple=True,
    metavar="FILE.pcapng",
    help="The evidence pcapng; a sidecar FILE.pcapng.json says where each packet came from.",
)
def evidence_cmd(captures, finding_ids, verdicts, flow_specs, rules_, inventory, outputs) -> int:
    """Write the packets of chosen flows (both directions, the ICMP errors about them)
    from the captures into one pcapng, in time order, with a JSON sidecar."""
    from portmatrix.evidence import EvidenceOptions, run_command

    if not (finding_ids or verdicts or flow_specs):
        raise click.UsageError("choose flows with --finding, --verdict or --flow")
    if (finding_ids or verdicts) and not rules_:
        raise click.UsageError("--finding and --verdict need --rules (and --inventory)")
    if len(outputs) > 1:
        raise click.UsageError("give one --output: the evidence is one pcapng")
    return run_command(
        EvidenceOptions(captures, finding_ids, verdicts, flow_specs, rules_, inventory, outputs[0])
    )
