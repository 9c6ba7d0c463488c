"""`portmatrix check`: load the matrix and inventory, read the traffic, classify,
build findings and coverage, apply a baseline, write the reports.

Everything a person can get wrong — options, outputs, the matrix, the
inventory, a baseline, a role or a time that selects nothing — is checked
before the (long) read, and a value that selects nothing is said, never
passed over as a clean result.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from portmatrix.addresses import to_text
from portmatrix.errors import ExitCode, MatrixError, PortmatrixError
from portmatrix.findings.coverage import (
    CoverageTally,
    judged_coverage,
    link_coverage,
    unheld_roles,
)
from portmatrix.findings.expired import matrix_findings
from portmatrix.findings.grouping import Grouper
from portmatrix.findings.model import Coverage, Finding, JudgedResult, Thresholds, sort_findings
from portmatrix.findings.whatif import Judged, WhatIf, what_if
from portmatrix.flows.filters import FlowFilter
from portmatrix.flows.from_captures import read_traffic
from portmatrix.flows.traffic import Traffic
from portmatrix.policy.classify import Classified, classify
from portmatrix.policy.inventory import Inventory, load_inventory
from portmatrix.policy.lookup import VERDICTS, RuleIndex
from portmatrix.policy.matrix import Matrix, check_role_names, load_matrix
from portmatrix.policy.roles import RoleMap, build_role_map, real_roles
from portmatrix.times import stamp

if TYPE_CHECKING:
    from portmatrix.apps.labels import Labels


@dataclass
class Result(JudgedResult):
    traffic: Traffic
    matrix: Matrix
    inventory: Inventory | None
    role_map: RoleMap
    index: RuleIndex
    classified: Classified
    findings: list[Finding]  # new findings (not in the baseline)
    coverage: list[Coverage]
    known: int = 0  # findings suppressed because the baseline has them
    notices: list[str] = field(default_factory=list)
    filters: FlowFilter = field(default_factory=lambda: FlowFilter())
    thresholds: Thresholds = field(default_factory=Thresholds)
    command: list[str] | None = None  # the command line, when run from one
    created: str | None = None  # when the report was made (ISO 8601 UTC), likewise
    what_if: WhatIf | None = None  # the changes another matrix would make (--what-if)
    labels: Labels | None = None  # application labels of the flows behind findings

    def verdict_counts(self) -> dict[str, int]:
        return self.classified.counts()

    def exit_code(self, fail_on: str) -> int:
        """1 when a finding, or a what-if change, is at least as severe as `fail_on`."""
        mine = super().exit_code(fail_on)
        return max(mine, self.what_if.exit_code(fail_on)) if self.what_if else mine


@dataclass
class Alternative:
    """The matrix (and the inventory loaded against it) of `--what-if`."""

    matrix: Matrix
    inventory: Inventory | None


@dataclass
class Reading:
    """How the inputs are read: progress, processes, a Dask cluster."""

    on_batch: Callable[[int, int], None] | None = None
    jobs: int = 1
    dask: str | None = None


BASELINE_HINT = "give a previous `check --format json` report"


def load_baseline(path: str) -> set[str]:
    """Finding ids of a previous JSON report."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise PortmatrixError("no such file", file=path, hint=BASELINE_HINT) from None
    except UnicodeDecodeError:
        raise PortmatrixError("not text (UTF-8)", file=path, hint=BASELINE_HINT) from None
    except json.JSONDecodeError as exc:
        raise PortmatrixError(
            f"not JSON ({exc.msg})", file=path, where=f"line {exc.lineno}", hint=BASELINE_HINT
        ) from None
    except RecursionError:  # brackets nested deeper than any report's
        raise PortmatrixError(
            "not a report: nested too deep", file=path, hint=BASELINE_HINT
        ) from None
    except OSError as exc:
        raise PortmatrixError(f"cannot read: {exc.strerror}", file=path) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("findings"), list):
        raise PortmatrixError("no `findings` list", file=path, hint=BASELINE_HINT)
    return {
        f["id"] for f in doc["findings"] if isinstance(f, dict) and isinstance(f.get("id"), str)
    }


def run_check(
    inputs: list[str],
    rules: list[str],
    inventory: str | None,
    *,
    baseline: str | None = None,
    today: dt.date | None = None,
    reading: Reading | None = None,
    filters: FlowFilter | None = None,
    records: str | None = None,
    thresholds: Thresholds | None = None,
    what_if: list[str] | tuple[str, ...] = (),
    apps: bool = False,
) -> Result:
    """Check `inputs`: capture files, or flow-record files when `records` is given
    ("auto": each file's format from its content, else a records.formats name,
    "zeek" for conn.log); with `what_if` (matrix files), also what judging them by
    that matrix would change; with `apps`, the application labels of the flows
    behind the findings (captures only: flow records carry no payload)."""
    # Inputs that are cheap to check fail before the long read.
    matrix = load_matrix(rules)
    inv = load_inventory(inventory, matrix) if inventory else None
    other = load_alternative(what_if, inventory) if what_if else None
    known_ids = load_baseline(baseline) if baseline else set()
    filters = filters or FlowFilter()
    check_role_names(filters.roles, matrix, "--role")
    wanted = build_role_map(matrix, inv).hostnames  # to learn from DNS answers
    if other:
        wanted |= build_role_map(other.matrix, other.inventory).hostnames
    traffic = read_inputs(inputs, reading, records, wanted)
    result = evaluate(traffic, matrix, inv, known_ids, today, filters, thresholds, other)
    if apps and not records:
        add_labels(result, inputs)
    return result


def add_labels(result: Result, inputs: list[str], on_batch=None) -> None:
    """The application labels of the flows behind the findings, from a second read
    of the captures (`on_batch(bytes, packets)`: its progress)."""
    from portmatrix.apps.findings import label_result

    result.labels = label_result(result, inputs, on_batch=on_batch)


def load_alternative(files, inventory: str | None) -> Alternative:
    """The --what-if matrix, with the inventory loaded against it too (its roles
    must be the matrix's)."""
    matrix = load_matrix(files)
    try:
        inv = load_inventory(inventory, matrix) if inventory else None
    except MatrixError as exc:
        exc.hint = f"{exc.hint + '; ' if exc.hint else ''}the --what-if matrix must define it"
        raise
    return Alternative(matrix, inv)


def read_inputs(
    inputs: list[str],
    reading: Reading | None = None,
    records: str | None = None,
    wanted: frozenset[str] = frozenset(),
) -> Traffic:
    """The traffic of `inputs`: capture files (learning the `wanted` hostnames'
    addresses from their DNS answers), or flow records when `records` names their
    format ("auto": told by each file's content; "zeek" for conn.log). Shared by
    `check` and `learn`: whatever reads flows for one reads them for both."""
    reading = reading or Reading()
    if records:
        from portmatrix.records.formats import read_records

        fmt = None if records == "auto" else records
        return read_records(inputs, fmt, jobs=reading.jobs, on_batch=reading.on_batch)
    return read_traffic(
        inputs, on_batch=reading.on_batch, jobs=reading.jobs, dask=reading.dask, wanted=wanted
    )


def evaluate(
    traffic: Traffic,
    matrix: Matrix,
    inv: Inventory | None,
    known_ids: set[str] | frozenset[str] = frozenset(),
    today: dt.date | None = None,
    filters: FlowFilter | None = None,
    thresholds: Thresholds | None = None,
    other: Alternative | None = None,
) -> Result:
    role_map = build_role_map(matrix, inv, traffic.dns_names, traffic.claims)
    index = RuleIndex(matrix, today)
    filters = filters or FlowFilter()
    whole = traffic
    traffic = traffic.narrowed(filters)
    cls = classify(traffic.flows, index, role_map)
    if filters.verdicts or filters.roles:
        keep = _judged_mask(cls, role_map, filters)
        traffic = replace(traffic, flows=traffic.flows.take(keep))
        cls = cls.take(keep)
    notices = traffic.notices()
    thresholds = thresholds or Thresholds()
    tally = CoverageTally(matrix)
    tally.add(traffic.flows, cls)
    findings = Grouper(thresholds).findings(
        traffic.flows, cls, role_map, index, tally.rules, len(traffic.captures) > 1
    )
    judge, raise_findings, notice = _coverage_judged(whole, traffic, filters)
    cov, cov_findings = judged_coverage(tally, role_map, traffic.weakened, judge, traffic.captures)
    notices += [notice] if notice else []
    findings += (cov_findings if raise_findings else []) + matrix_findings(matrix, index)
    notices += _role_notices(matrix, inv, role_map, unheld_roles(matrix, role_map), traffic)
    link_coverage(findings)
    findings = sort_findings(findings)
    new = [f for f in findings if f.id not in known_ids and f.part_of not in known_ids]
    changes = None
    if other is not None:
        now = Judged(matrix, role_map, cls, cov)
        changes = judge_what_if(traffic, now, other, today, judge)
    return Result(
        traffic,
        matrix,
        inv,
        role_map,
        index,
        cls,
        new,
        cov,
        known=len(findings) - len(new),
        notices=notices,
        filters=filters,
        thresholds=thresholds,
        what_if=changes,
    )


def judge_what_if(
    traffic: Traffic, now: Judged, other: Alternative, today, judge: bool = True
) -> WhatIf:
    """The flows judged again under the --what-if matrix, and its coverage by the
    same function as the check's own (`now` carries that), compared."""
    role_map = build_role_map(other.matrix, other.inventory, traffic.dns_names, traffic.claims)
    cls = classify(traffic.flows, RuleIndex(other.matrix, today), role_map)
    tally = CoverageTally(other.matrix)
    tally.add(traffic.flows, cls)
    cov, _ = judged_coverage(tally, role_map, traffic.weakened, judge, traffic.captures)
    return what_if(traffic.flows, now, Judged(other.matrix, role_map, cls, cov))


def _coverage_judged(whole: Traffic, chosen: Traffic, filters: FlowFilter):
    """(judge coverage at all, let it raise findings, the notice saying why not):
    with no traffic, or a window holding none, nothing is judged; a filter that
    selects nothing, or narrows by host, port, verdict or role, shows coverage for
    the chosen flows only, without findings of its own."""
    missed = _nothing_to_judge(whole, filters)
    if missed:
        return False, False, missed
    if filters.active and len(whole.flows) and not len(chosen.flows):
        return (
            True,
            False,
            (
                f"no flow matches the filters ({filters.text()}): the coverage of required "
                "services is shown for no flows, and raises no findings"
            ),
        )
    if filters.narrows_services:
        return (
            True,
            False,
            (
                "filtered by host, port, verdict or role: the coverage of required services "
                "is shown for the chosen flows only, and raises no findings of its own"
            ),
        )
    return True, True, ""


def _nothing_to_judge(traffic: Traffic, filters: FlowFilter) -> str:
    """A sentence when there is no traffic to judge coverage by — none read at all,
    or none in the time window asked for — else ""."""
    if not traffic.packets and not len(traffic.flows):
        return "no traffic at all: the coverage of required services is not evaluated"
    missed = filters.missed(traffic.first_ts, traffic.last_ts)
    if not missed:
        return ""
    return f"{missed}: no flow was judged and the coverage of required services is not evaluated"


def _judged_mask(cls: Classified, role_map: RoleMap, filters: FlowFilter) -> np.ndarray:
    keep = np.ones(len(cls.verdict), bool)
    if filters.verdicts:
        codes = [VERDICTS.index(v) for v in filters.verdicts]
        keep &= np.isin(cls.verdict, codes)
    if filters.roles:
        wanted = set(filters.roles)
        sets = range(len(role_map.index.sets))
        holds = np.array([bool(wanted & role_map.roles_of(i)) for i in sets])
        keep &= holds[cls.init_roles] | holds[cls.resp_roles]
    return keep


def _role_notices(
    matrix: Matrix, inv: Inventory | None, role_map: RoleMap, unheld: set[str], traffic: Traffic
) -> list[str]:
    """Roles that hold no address (and the required rules that therefore are not
    evaluated), hostnames nothing resolved, hostnames resolved from the capture's
    DNS answers: one sentence each kind."""
    out = []
    if unheld:
        where = f"in {inv.file}" if inv else "(no inventory given: only the matrix's own)"
        skipped = [r.id for r in matrix.rules if r.required and {r.from_role, r.to_role} & unheld]
        not_evaluated = f"; required rules not evaluated: {', '.join(skipped)}" if skipped else ""
        fix = "list their addresses in the inventory" if inv else "give --inventory"
        out.append(
            f"roles with no address {where}: {', '.join(sorted(unheld))} — their rules "
            f"cannot match{not_evaluated} — {fix}"
        )
    named = {n for n, entry in role_map.named.items() if entry.destinations}
    names = sorted(
        n
        for role, ns in role_map.unresolved.items()
        if real_roles([role])
        for n in ns
        if n not in named
    )
    if names:
        dns_unread = sum(c.dns_unread for c in traffic.captures)
        unread = (
            f"; {dns_unread} DNS responses (over TCP, in tunnels or fragmented) were not read"
            if dns_unread
            else ""
        )
        out.append(
            f"hostnames with no known address: {', '.join(names)} — add them under "
            f"`hosts:` in the inventory, or capture the clients' DNS lookups too{unread}"
        )
    if learned := learned_names(role_map):
        out.append(learned)
    if unread := unread_names(traffic):
        out.append(unread)
    return out


def learned_names(role_map: RoleMap) -> str:
    """One sentence: each role hostname learned from the capture, and how — from DNS
    answers (its addresses, for the whole capture) or named by clients (TLS SNI,
    HTTP Host, QUIC: the destinations of those flows only, and only where the
    name's known addresses do not contradict them)."""
    from portmatrix.decode.names import HOW

    parts = []
    for name, addrs in sorted(role_map.learned.items()):
        parts.append(f"{name} → {_addresses(addrs)} (DNS answers)")
    for name, entry in sorted(role_map.named.items()):
        how = ", ".join(HOW_TEXT[HOW[k]] for k in sorted(entry.how))
        flows = len(entry.flows)
        if entry.destinations:
            parts.append(
                f"{name} → {_addresses(sorted(entry.destinations))} for the "
                f"{flows} flow{'s' if flows > 1 else ''} whose client named it ({how})"
            )
        if entry.contradicting:
            parts.append(
                f"{name} named ({how}) by clients of {_addresses(sorted(entry.contradicting))}, "
                "which its known addresses do not include: not believed — a forged name, or "
                "an address of the name never resolved in the capture"
            )
    if not parts:
        return ""
    caveat = (
        " — a name a client sends (SNI, Host) is its own word and can be forged: it "
        "gives only that flow's destination the name's roles"
        if role_map.named
        else ""
    )
    return "hostnames learned from the capture: " + "; ".join(parts) + caveat


HOW_TEXT = {"tls-sni": "TLS SNI", "http-host": "HTTP Host", "quic-sni": "QUIC SNI"}


MESSAGES = {"tls-sni": "TLS ClientHello", "http-host": "HTTP request", "quic-sni": "QUIC Initial"}


def unread_names(traffic: Traffic) -> str:
    """A sentence when first messages naming a role's hostname were damaged, or when
    named flows past the bound were not kept."""
    from portmatrix.decode.names import HOW

    claims = traffic.claims
    damaged = [
        f"{n} {MESSAGES[k]}{'s' if n > 1 else ''}" for k in HOW if (n := claims.damaged.get(k, 0))
    ]
    parts = []
    if damaged:
        were = "was" if sum(claims.damaged.values()) == 1 else "were"
        parts.append(
            f"{', '.join(damaged)} naming a role's hostname {were} damaged: counted, not read"
        )
    if claims.dropped:
        parts.append(f"{claims.dropped} flows named a role's hostname past the limit: not kept")
    return "; ".join(parts)


def _addresses(addrs) -> str:
    return ", ".join(to_text(a) for a in addrs[:3]) + (
        f" and {len(addrs) - 3} more" if len(addrs) > 3 else ""
    )


@dataclass
class CheckOptions:
    """`portmatrix check` as the command line gave it."""

    inputs: tuple[str, ...]
    rules: tuple[str, ...]
    inventory: str | None = None
    zeek: bool = False  # the inputs are Zeek conn.log files (flowlog with format zeek)
    flowlog: bool = False  # the inputs are flow records (records.formats)
    flowlog_format: str | None = None  # ... all of this format, else detected per file
    fmt: str | None = None
    outputs: tuple[str, ...] = ()
    fail_on: str = "error"
    flows_out: str | None = None
    baseline: str | None = None
    jobs: int = 1
    dask: str | None = None
    quiet: bool = False
    filters: dict = field(default_factory=dict)  # since, until, hosts, ports, verdicts, roles
    thresholds: dict = field(default_factory=dict)  # scan_ports, scan_hosts, many_sources
    command: list[str] | None = None
    what_if: tuple[str, ...] = ()  # a matrix to compare with (files, layered)
    apps: bool = True  # application labels of the flows behind findings (--no-app: off)


def records_format(opts) -> str | None:
    """What the inputs of a check (or learn) are: None for captures, else the flow
    records' format ("auto": told by each file's content)."""
    if opts.zeek:
        return "zeek"
    return opts.flowlog_format or ("auto" if opts.flowlog else None)


def expand(opts, records: str | None):
    """The input files: captures, or flow records of the format `records` ("auto":
    told by their content), every one checked readable before the read."""
    from portmatrix.sources.inputs import expand_inputs

    if not records:
        return expand_inputs(opts.inputs)
    from portmatrix.records.formats import check_inputs, input_kind

    if opts.dask:
        raise PortmatrixError(
            "--dask reads captures; flow records are read on this machine",
            hint="leave out --dask (--jobs reads the files in parallel)",
        )
    fmt = None if records == "auto" else records
    inputs = expand_inputs(opts.inputs, kind=input_kind(fmt))
    check_inputs(inputs, fmt)
    return inputs


def run_command(opts: CheckOptions) -> int:
    """Check, write every report asked for, say where; the exit status."""
    from portmatrix import console
    from portmatrix.files import check_writable, staged
    from portmatrix.report.outputs import (
        Output,
        check_outputs,
        plan_outputs,
        show_outputs,
        write_outputs,
        wrote_line,
    )
    from portmatrix.report.progress import progress
    from portmatrix.sources.inputs import skipped_notice, total_size

    # Everything that needs no input first, then what needs their names; all
    # before the matrix is loaded and long before the capture is read.
    filters = FlowFilter(**opts.filters)
    outputs = plan_outputs(opts.outputs, opts.fmt)
    if opts.flows_out:
        from portmatrix.report.verdict_flows import check_flow_export

        check_flow_export(opts.flows_out)
        if any(_same_path(opts.flows_out, o.path) for o in outputs):
            raise PortmatrixError(
                "is also a report (--output)",
                file=opts.flows_out,
                where="--flows",
                hint="give the flow export a file of its own",
            )
    records = records_format(opts)
    inputs = expand(opts, records)
    # No output may be any file the run reads: a capture, a matrix, the inventory,
    # the baseline (the next run would compare against this one's report).
    read = [*inputs, *opts.rules, *opts.what_if]
    read += [f for f in (opts.inventory, opts.baseline) if f]
    check_outputs(outputs, read)
    if opts.flows_out:
        check_writable(opts.flows_out, "--flows", read)
    with progress(total_size(inputs), not opts.quiet) as on_batch:
        result = run_check(
            inputs,
            list(opts.rules),
            opts.inventory,
            baseline=opts.baseline,
            reading=Reading(on_batch, opts.jobs, opts.dask),
            filters=filters,
            records=records,
            thresholds=Thresholds(**opts.thresholds),
            what_if=opts.what_if,
        )
    if opts.apps and not records:
        with progress(total_size(inputs), not opts.quiet, "labelling flows") as on_batch:
            add_labels(result, inputs, on_batch)
    result.command = opts.command
    result.created = stamp()
    if notice := skipped_notice(inputs):
        result.notices.insert(0, notice)
    with staged() as batch:  # every file appears, or (interrupted) none does
        written = write_outputs(result, outputs, batch)
        if opts.flows_out:
            from portmatrix.report.verdict_flows import stage_flows

            stage_flows(result, opts.flows_out, batch)
            written.append(Output(opts.flows_out, "flows"))
    show_outputs(result, outputs)
    if written and not opts.quiet:
        console.say(wrote_line(written, result))
    if damaged := result.traffic.damaged:  # the rest was analyzed and reported: why not all
        for error in damaged:
            console.say(f"portmatrix: error: {error}")
        return ExitCode.BAD_INPUT
    return result.exit_code(opts.fail_on)


def _same_path(a: str, b: str) -> bool:
    import os

    return os.path.abspath(a) == os.path.abspath(b)
