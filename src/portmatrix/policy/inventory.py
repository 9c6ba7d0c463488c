"""The site inventory: which addresses, ranges and hostnames hold each role.

A host may hold several roles; every address also holds the implicit role
`any`. Hostnames are resolved through the inventory's `hosts:` table and
through the DNS answers in the capture (`portmatrix.dns`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from portmatrix.addresses import Entry, parse_entry, to_int
from portmatrix.errors import MatrixError
from portmatrix.policy.matrix import ANY, Matrix, Problem
from portmatrix.policy.schema import INVENTORY
from portmatrix.policy.yamlfile import YList, YMap, load_yaml


@dataclass
class Inventory:
    file: str = ""
    roles: dict[str, list[Entry]] = field(default_factory=dict)
    role_lines: dict[str, int] = field(default_factory=dict)
    hosts: dict[str, list[int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def load_inventory(path: str, matrix: Matrix | None = None) -> Inventory:
    """Load an inventory and raise its first error (see `collect_inventory`)."""
    inv = collect_inventory(path, matrix)
    for problem in inv.problems:
        if problem.severity == "error":
            raise problem.error()
    return inv


def collect_inventory(path: str, matrix: Matrix | None = None) -> Inventory:
    """Load an inventory, noting every problem; check its roles against `matrix`."""
    data = load_yaml(path)
    inv = Inventory(file=path)

    def problem(line: int, key: str, what: str, hint: str = "", severity: str = "error"):
        inv.problems.append(Problem(severity, path, line, key, what, hint))

    if isinstance(data, YMap) and "rules" in data:
        raise MatrixError(
            "this looks like a matrix (it has rules), not an inventory",
            file=path,
            where="--inventory",
            hint="give it with --rules, and the site's addresses with --inventory",
        )
    if not isinstance(data, YMap) or "roles" not in data:
        problem(
            getattr(data, "line", 1),
            "roles",
            "an inventory is a mapping with `roles:`",
            "e.g. `roles: {nodes: [10.1.1.11-10.1.1.16]}`",
        )
        return inv
    for key in INVENTORY.unknown(data):
        problem(data.line_of(key), key, "unknown key", INVENTORY.expected)
    _read_hosts(data.get("hosts"), data, inv, problem)
    roles = data["roles"]
    if not isinstance(roles, YMap):
        problem(data.line_of("roles"), "roles", "must map role names to address lists")
        return inv
    for role, items in roles.items():
        _read_role(role, items, roles.line_of(role), inv, matrix, problem)
    if matrix is not None:
        used = {r.from_role for r in matrix.rules} | {r.to_role for r in matrix.rules}
        for role in sorted(used - {ANY}):
            if role in matrix.roles and not inv.roles.get(role) and not matrix.roles[role].entries:
                problem(
                    inv.role_lines.get(role, data.line_of("roles")),
                    f"roles.{role}",
                    "the matrix uses this role but the inventory gives it no addresses",
                    "its rules cannot match any flow; list its addresses",
                    severity="warning",
                )
    return inv


def _read_role(role: str, items: Any, line: int, inv: Inventory, matrix, problem) -> None:
    """One role's entries into `inv.roles`, noting problems."""
    inv.role_lines[role] = line
    if role == ANY:
        problem(line, f"roles.{role}", "`any` is every address and cannot be listed", "remove it")
        return
    if matrix is not None and role not in matrix.roles:
        problem(
            line,
            f"roles.{role}",
            "role not defined by the matrix",
            f"use one of: {', '.join(sorted(matrix.roles))}",
        )
        return
    entries: list[Entry] = []
    if items is None:
        items = YList()
        items.line, items.item_lines = line, []
    elif not isinstance(items, YList):
        value = items
        items = YList([value])
        items.line, items.item_lines = line, [line]
    for item, item_line in zip(items, items.item_lines, strict=True):
        try:
            entries.append(parse_entry(str(item)))
        except ValueError as exc:
            problem(
                item_line,
                f"roles.{role}",
                str(exc),
                "write an address, a CIDR block, a range a-b or a hostname",
            )
    inv.roles[role] = entries


def _read_hosts(hosts: Any, data: YMap, inv: Inventory, problem) -> None:
    if hosts is None:
        return
    if not isinstance(hosts, YMap):
        problem(data.line_of("hosts"), "hosts", "must map hostnames to addresses")
        return
    for name, addrs in hosts.items():
        values = addrs if isinstance(addrs, list) else [addrs]
        out = []
        for value in values:
            try:
                out.append(to_int(ipaddress.ip_address(str(value))))
            except ValueError:
                problem(hosts.line_of(name), f"hosts.{name}", f"{value!r} is not an address")
        inv.hosts[name.lower().rstrip(".")] = out
