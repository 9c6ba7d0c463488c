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
