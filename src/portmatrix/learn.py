"""`portmatrix learn`: read traffic as `check` does, draft a matrix from its
established flows (`policy.learn`), write it as a commented rules file
(`policy.draft_file`).

Options, the output, the base matrix and the inventory are checked before the
traffic is read, as for `check`.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from portmatrix.errors import MatrixError, PortmatrixError
from portmatrix.policy.inventory import Inventory
from portmatrix.policy.learn import DraftOptions


@dataclass
class LearnOptions:
    """`portmatrix learn` as the command line gave it."""

    inputs: tuple[str, ...]
    inventory: str | None = None
    rules: tuple[str, ...] = ()  # the base matrix: draft only what it does not allow
    zeek: bool = False
    flowlog: bool = False
    flowlog_format: str | None = None
    output: str = "-"
    name: str = "learned"
    draft: DraftOptions = field(default_factory=DraftOptions)
    jobs: int = 1
    dask: str | None = None
    quiet: bool = False
    filters: dict = field(default_factory=dict)  # since, until, hosts, ports


def check_role_names(inv: Inventory) -> None:
    """Every role of the inventory must be a name a matrix can declare: the draft
    declares them."""
    from portmatrix.policy.matrix import is_role_name

    for role, line in inv.role_lines.items():
        if not is_role_name(role):
            raise MatrixError(
                f"roles.{role}: {role!r} cannot be a role of the draft",
                file=inv.file,
                where=str(line),
                hint="name roles with lowercase words joined by '-'",
            )


def run_command(opts: LearnOptions) -> int:
    """Draft, write, say what was written; 0."""
    from portmatrix import console
    from portmatrix.check import Reading, expand, read_inputs, records_format
    from portmatrix.files import check_writable, write_text
    from portmatrix.flows.filters import FlowFilter
    from portmatrix.policy.draft_file import Provenance, render
    from portmatrix.policy.inventory import load_inventory
    from portmatrix.policy.learn import learn
    from portmatrix.policy.matrix import Matrix, is_role_name, load_matrix
    from portmatrix.policy.roles import build_role_map
    from portmatrix.report.progress import progress
    from portmatrix.sources.inputs import total_size

    filters = FlowFilter(**opts.filters)
    if not is_role_name(opts.name):
        raise PortmatrixError(
            f"{opts.name!r} is not a matrix name",
            where="--name",
            hint="use lowercase words joined by '-', e.g. site-learned",
        )
    records = records_format(opts)
    inputs = expand(opts, records)
    if opts.output != "-":
        given = [*inputs, *opts.rules, *([opts.inventory] if opts.inventory else [])]
        check_writable(opts.output, "--output", given)
    base = load_matrix(opts.rules) if opts.rules else None
    inv = load_inventory(opts.inventory, base) if opts.inventory else None
    if inv is not None and base is None:
        check_role_names(inv)
    with progress(total_size(inputs), not opts.quiet) as on_batch:
        reading = Reading(on_batch, opts.jobs, opts.dask)
        wanted = build_role_map(base or Matrix(name=""), inv).hostnames
        traffic = read_inputs(inputs, reading, records, wanted)
    traffic = traffic.narrowed(filters)
    draft = learn(traffic.flows, base, inv, traffic.dns_names, opts.draft, opts.name)
    made = Provenance(
        inputs=[(c.path, c.sha256) for c in traffic.captures],
        inventory=opts.inventory,
        base=base.files if base else [],
        version=_version(),
        check_command=_check_command(opts),
    )
    text = render(draft, made)
    if opts.output == "-":
        console.out(text)
    else:
        write_text(opts.output, text, "--output")
    if not opts.quiet:
        console.say(_summary(draft, opts.output))
    for error in traffic.damaged:  # drafted from the rest; these say why not all
        console.say(f"portmatrix: error: {error}")
    return 2 if traffic.damaged else 0


def _version() -> str:
    from portmatrix import __version__

    return __version__


def _check_command(opts: LearnOptions) -> str:
    """The command that checks the learning input against the draft."""
    draft = opts.output if opts.output != "-" else "DRAFT.yaml"
    words = ["portmatrix", "check", *opts.inputs]
    if opts.zeek:
        words = ["portmatrix", "check", *(w for i in opts.inputs for w in ("--zeek", i))]
    for name in (*opts.rules, draft):
        words += ["--rules", name]
    if opts.inventory:
        words += ["--inventory", opts.inventory]
    return shlex.join(words)


def _summary(draft, output: str) -> str:
    required = sum(r.rule.required for r in draft.rules)
    drafted = sum(origin == "draft" for origin in draft.origins.values())
    where = "drafted" if output == "-" else f"wrote {output}"
    parts = [f"{len(draft.rules)} rule(s) ({required} required)", f"{drafted} draft role(s)"]
    if draft.kept_out:
        parts.append(f"{len(draft.kept_out)} kept out by --min-flows/--min-hosts")
    if draft.counts["not_learned"]:
        parts.append(f"{draft.counts['not_learned']} flow(s) not learned (listed at the end)")
    return f"portmatrix: {where}: " + ", ".join(parts)
