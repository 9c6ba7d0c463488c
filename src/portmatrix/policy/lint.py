"""`rules lint`: what is wrong or suspicious in a layered matrix and its inventory.

Problems from loading (unknown roles, bad ports, duplicate ids, ...) come first;
then what only shows when the rules are looked at together: rules that shadow
or overlap others, rules that can never match, expired exceptions, roles
without addresses, hostnames nothing resolves.
"""

from __future__ import annotations

import datetime as dt

from portmatrix.policy.inventory import Inventory
from portmatrix.policy.matrix import ANY, PORTLESS, Matrix, Problem, Rule
from portmatrix.policy.roles import build_role_map, exception_label


def lint(matrix: Matrix, inventory: Inventory | None, today: dt.date) -> list[Problem]:
    problems = list(matrix.problems)
    if inventory is not None:
        problems += inventory.problems
    if any(p.severity == "error" for p in problems):
        return problems
    problems += _shadowed(matrix)
    for exc in matrix.exceptions:
        if exc.expired(today):
            file, _, line = exc.source.rpartition(":")
            problems.append(
                Problem(
                    "warning",
                    file,
                    int(line),
                    f"exceptions.{exc.id}.expires",
                    f"expired on {exc.expires}; it no longer allows anything",
                    "renew it with a new date, or delete it",
                )
            )
    if inventory is not None:
        problems += _unmatchable(matrix, inventory)
    return problems


def _ranges(rule: Rule) -> list[tuple[int, int]]:
    if rule.proto in PORTLESS:
        return [(t, t) for t in rule.icmp_types] or [(0, 255)]
    return list(rule.ports)


def _covers(outer: list[tuple[int, int]], inner: list[tuple[int, int]]) -> bool:
    return all(any(olo <= lo and hi <= ohi for olo, ohi in outer) for lo, hi in inner)


def _intersect(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> bool:
    return any(alo <= bhi and blo <= ahi for alo, ahi in a for blo, bhi in b)


def _opens(rule: Rule, initiator: str, responder: str) -> bool:
    """Whether `rule` lets every holder of role `initiator` open towards every `responder`."""
    if rule.from_role in (initiator, ANY) and rule.to_role in (responder, ANY):
        return True
    return (
        rule.initiator == "either"
        and rule.to_role in (initiator, ANY)
        and rule.from_role in (responder, ANY)
    )


def _shadowed(matrix: Matrix) -> list[Problem]:
    out = []
    rules = matrix.rules
    for i, a in enumerate(rules):
        for b in rules[i + 1 :]:
            if a.proto != b.proto or not _intersect(_ranges(a), _ranges(b)):
                continue
            for outer, inner in ((a, b), (b, a)):
                roles_cover = _opens(outer, inner.from_role, inner.to_role) and (
                    inner.initiator == "from" or _opens(outer, inner.to_role, inner.from_role)
                )
                if roles_cover and _covers(_ranges(outer), _ranges(inner)):
                    file, _, line = inner.source.rpartition(":")
                    out.append(
                        Problem(
                            "warning",
                            file,
                            int(line),
                            f"rules.{inner.id}",
                            f"shadowed by rule {outer.id} ({outer.source}), which already allows "
                            f"all of it",
                            "merge the two rules, or narrow one of them",
                        )
                    )
                    break
            else:
                if a.from_role == b.from_role and a.to_role == b.to_role:
                    file, _, line = b.source.rpartition(":")
                    out.append(
                        Problem(
                            "warning",
                            file,
                            int(line),
                            f"rules.{b.id}",
                            f"ports overlap rule {a.id} ({a.source}) for the same roles",
                            "merge them or make the port sets disjoint",
                        )
                    )
    return out


def _unmatchable(matrix: Matrix, inventory: Inventory) -> list[Problem]:
    out = []
    role_map = build_role_map(matrix, inventory)
    held = set().union(*role_map.index.sets)
    for rule in matrix.rules:
        empty = [r for r in (rule.from_role, rule.to_role) if r != ANY and r not in held]
        if empty:
            file, _, line = rule.source.rpartition(":")
            out.append(
                Problem(
                    "warning",
                    file,
                    int(line),
                    f"rules.{rule.id}",
                    f"can never match: no address holds role {', '.join(sorted(set(empty)))}",
                    f"list it in the inventory ({inventory.file})",
                )
            )
    for label, names in sorted(role_map.unresolved.items()):
        file, line, key = _written_at(label, matrix, inventory)
        out.append(
            Problem(
                "warning",
                file,
                line,
                key,
                f"no address known for {', '.join(names)}",
                "add them under `hosts:` in the inventory",
            )
        )
    return out


def _written_at(label: str, matrix: Matrix, inventory: Inventory) -> tuple[str, int, str]:
    """File, line and key where the hostnames of a role-map label were written: the
    inventory, a role the matrix fixes, or a side of an exception (`exception_label`)."""
    if label in inventory.role_lines:
        return inventory.file, inventory.role_lines[label], f"roles.{label}"
    if label in matrix.roles:
        source, key = matrix.roles[label].source, f"roles.{label}"
    else:
        source, key = next(
            (e.source, f"exceptions.{e.id}.{side}")
            for e in matrix.exceptions
            for side in ("from", "to")
            if exception_label(e.id, side) == label
        )
    file, _, line = source.rpartition(":")
    return file, int(line), key
