"""`portmatrix rules show|lint`: the compiled matrix shown, and its problems."""

from __future__ import annotations


def show(names: tuple[str, ...], role: str | None, port: int | None, fmt: str) -> int:
    """Print the rules of the layered matrix, narrowed to a role and a port."""
    from portmatrix import console
    from portmatrix.policy.matrix import check_role_names, load_matrix
    from portmatrix.report.matrix_view import FORMATS

    matrix = load_matrix(names)
    if role is not None:
        check_role_names([role], matrix, "--role")
    chosen = [
        r
        for r in matrix.rules
        if (role is None or role in (r.from_role, r.to_role)) and (port is None or r.has_port(port))
    ]
    console.out(FORMATS[fmt](matrix, chosen))
    return 0


def lint(names: tuple[str, ...], inventory: str | None) -> int:
    """Print every problem; 2 when the files cannot be used, 1 with warnings only."""
    import datetime as dt

    from portmatrix import console
    from portmatrix.errors import ExitCode
    from portmatrix.policy.inventory import collect_inventory
    from portmatrix.policy.lint import lint as problems_of
    from portmatrix.policy.matrix import collect_matrix

    matrix = collect_matrix(names)
    inv = collect_inventory(inventory, matrix) if inventory else None
    problems = problems_of(matrix, inv, dt.date.today())
    from portmatrix.report.escape import visible

    console.out("".join(visible(f"{p.severity}: {p}") + "\n" for p in problems))
    errors = sum(p.severity == "error" for p in problems)
    if errors:
        console.say(f"portmatrix: error: {errors} error(s): the files cannot be used as they are")
        return ExitCode.BAD_INPUT
    files = ", ".join(matrix.files) + (f" with {inventory}" if inventory else "")
    console.out(
        f"{len(problems)} problem(s) in {files}: {len(matrix.rules)} rules, "
        f"{len(matrix.roles)} roles, {len(matrix.exceptions)} exceptions\n"
    )
    return ExitCode.FINDINGS if problems else ExitCode.OK


def stack(text: str) -> list[str]:
    """A matrix or a layered stack as given to `rules diff`: NAME|PATH, or several
    comma-separated (a path that exists is one file, commas and all)."""
    from pathlib import Path

    if Path(text).exists():
        return [text]
    return [part.strip() for part in text.split(",") if part.strip()]


def diff(a: str, b: str, inventory: str | None, fmt: str) -> int:
    """Print what changes from stack `a` to stack `b`; 1 when they differ."""
    from portmatrix import console
    from portmatrix.errors import ExitCode
    from portmatrix.policy.diff import diff as compare
    from portmatrix.policy.inventory import load_inventory
    from portmatrix.policy.matrix import load_matrix
    from portmatrix.policy.roles import build_role_map
    from portmatrix.report.diff_view import FORMATS

    old, new = load_matrix(stack(a)), load_matrix(stack(b))
    held = None
    if inventory:
        inv = load_inventory(inventory)
        held = set()
        for matrix in (old, new):
            held |= set().union(*build_role_map(matrix, inv).index.sets)
    result = compare(old, new, held)
    console.out(FORMATS[fmt](result))
    return ExitCode.FINDINGS if result.differ else ExitCode.OK
