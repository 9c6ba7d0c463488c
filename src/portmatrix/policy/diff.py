"""A semantic diff of two matrices (or layered stacks): what each allows, compared
on the compiled form, so reordering rules, renaming ids or splitting a range in
two is no difference.

Each matrix compiles to, per (from role, to role, protocol), the set of ports
(ICMP: types) that role may open on the other, and the subset a required rule
covers; a rule with `initiator: either` allows both ways. The diff then says,
per role pair and protocol, the ports added and removed, the ports whose
direction changed (now the other way, or now either way, or no longer) and
the ports that became or stopped being required; then the roles whose fixed
addresses changed, and the exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from portmatrix.policy.matrix import PORTLESS, Matrix, MatrixException, Rule, format_ports

Ports = tuple[tuple[int, int], ...]  # sorted, disjoint, non-adjacent inclusive ranges
Key = tuple[str, str, str]  # from role, to role, protocol


def normalise(ranges) -> Ports:
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def intersect(a: Ports, b: Ports) -> Ports:
    out = []
    for alo, ahi in a:
        for blo, bhi in b:
            lo, hi = max(alo, blo), min(ahi, bhi)
            if lo <= hi:
                out.append((lo, hi))
    return normalise(out)


def subtract(a: Ports, b: Ports) -> Ports:
    out = []
    for lo, hi in a:
        pieces = [(lo, hi)]
        for blo, bhi in b:
            pieces = [
                piece
                for plo, phi in pieces
                for piece in ((plo, min(phi, blo - 1)), (max(plo, bhi + 1), phi))
                if piece[0] <= piece[1]
            ]
        out += pieces
    return normalise(out)


def rule_ranges(rule: Rule) -> Ports:
    if rule.proto in PORTLESS:
        return normalise((t, t) for t in rule.icmp_types) or ((0, 255),)
    return normalise(rule.ports)


@dataclass
class Compiled:
    """What a matrix allows, per (from, to, proto): all ports, and the required ones."""

    allowed: dict[Key, Ports] = field(default_factory=dict)
    required: dict[Key, Ports] = field(default_factory=dict)
    rules: dict[Key, list[Rule]] = field(default_factory=dict)


def compile_matrix(matrix: Matrix) -> Compiled:
    c = Compiled()
    for rule in matrix.rules:
        keys = [(rule.from_role, rule.to_role, rule.proto)]
        if rule.initiator == "either" and rule.from_role != rule.to_role:
            keys.append((rule.to_role, rule.from_role, rule.proto))
        ranges = rule_ranges(rule)
        for key in keys:
            c.allowed[key] = normalise([*c.allowed.get(key, ()), *ranges])
            c.rules.setdefault(key, []).append(rule)
            if rule.required:
                c.required[key] = normalise([*c.required.get(key, ()), *ranges])
    return c


@dataclass
class PairDiff:
    """Differences for one role pair (as initiator → responder) and protocol."""

    from_role: str
    to_role: str
    proto: str
    added: Ports = ()  # allowed by B only
    removed: Ports = ()  # allowed by A only
    became_required: Ports = ()
    no_longer_required: Ports = ()
    added_by: list[str] = field(default_factory=list)  # B's rules behind `added`
    removed_by: list[str] = field(default_factory=list)  # A's rules behind `removed`
    no_effect: bool = False  # a role holds no address at the site (--inventory)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.became_required or self.no_longer_required)


@dataclass
class DirectionDiff:
    """Ports both matrices allow between two roles, but not the same way."""

    roles: tuple[str, str]
    proto: str
    ports: Ports
    a: str  # "x → y", "y → x" or "either"
    b: str
    no_effect: bool = False


@dataclass
class RoleDiff:
    role: str
    change: str  # added | removed | changed
    a: list[str]  # fixed addresses and hostnames in A
    b: list[str]


@dataclass
class ExceptionDiff:
    proto: str
    from_side: tuple[str, ...]
    to_side: tuple[str, ...]
    added: Ports = ()
    removed: Ports = ()
    expires: tuple[str, str] | None = None  # (A's, B's) when it changed


@dataclass
class MatrixDiff:
    a: list[str]
    b: list[str]
    pairs: list[PairDiff]
    directions: list[DirectionDiff]
    roles: list[RoleDiff]
    exceptions: list[ExceptionDiff]

    @property
    def differ(self) -> bool:
        return bool(self.pairs or self.directions or self.roles or self.exceptions)


def diff(a: Matrix, b: Matrix, held: set[str] | None = None) -> MatrixDiff:
    """What changes from `a` to `b`. With `held` (the roles that hold an address at
    a site), differences on other roles are marked `no_effect`."""
    ca, cb = compile_matrix(a), compile_matrix(b)
    keys = sorted(set(ca.allowed) | set(cb.allowed))
    added = {k: subtract(cb.allowed.get(k, ()), ca.allowed.get(k, ())) for k in keys}
    removed = {k: subtract(ca.allowed.get(k, ()), cb.allowed.get(k, ())) for k in keys}
    directions = _directions(keys, ca, cb, added, removed)
    pairs = []
    for k in keys:
        both = intersect(ca.allowed.get(k, ()), cb.allowed.get(k, ()))
        req_a, req_b = ca.required.get(k, ()), cb.required.get(k, ())
        p = PairDiff(
            *k,
            added=added[k],
            removed=removed[k],
            became_required=intersect(both, subtract(req_b, req_a)),
            no_longer_required=intersect(both, subtract(req_a, req_b)),
        )
        p.added_by = _covering(cb.rules.get(k, []), p.added)
        p.removed_by = _covering(ca.rules.get(k, []), p.removed)
        if p:
            pairs.append(p)
    if held is not None:
        for item in [*pairs, *directions]:
            roles = (item.from_role, item.to_role) if isinstance(item, PairDiff) else item.roles
            item.no_effect = any(r != "any" and r not in held for r in roles)
    return MatrixDiff(a.files, b.files, pairs, directions, _roles(a, b), _exceptions(a, b))


def _covering(rules: list[Rule], ports: Ports) -> list[str]:
    return [r.id for r in rules if ports and intersect(rule_ranges(r), ports)]


def _directions(keys, ca: Compiled, cb: Compiled, added, removed) -> list[DirectionDiff]:
    """Ports that moved from x → y to y → x, or gained or lost the other way while
    keeping this one; taken out of `added`/`removed` (changed in place)."""
    out = []
    moves: list[tuple[Key, Ports, Ports]] = []  # key, taken from removed, from added (reverse)
    for k in keys:
        x, y, proto = k
        if x == y:
            continue
        back = (y, x, proto)
        kept = intersect(ca.allowed.get(k, ()), cb.allowed.get(k, ()))
        moved = intersect(removed[k], added.get(back, ()))
        either = intersect(kept, added.get(back, ()))
        narrowed = intersect(kept, removed.get(back, ()))
        if moved:
            out.append(DirectionDiff((x, y), proto, moved, f"{x} → {y}", f"{y} → {x}"))
            moves.append((k, moved, ()))
            moves.append((back, (), moved))
        if either:
            out.append(DirectionDiff((x, y), proto, either, f"{x} → {y}", "either"))
            moves.append((back, (), either))
        if narrowed:
            out.append(DirectionDiff((x, y), proto, narrowed, "either", f"{x} → {y}"))
            moves.append((back, narrowed, ()))
    for k, from_removed, from_added in moves:
        removed[k] = subtract(removed[k], from_removed)
        added[k] = subtract(added[k], from_added)
    return out


def _entries(matrix: Matrix, role: str) -> list[str]:
    return sorted(e.text for e in matrix.roles[role].entries)


def _roles(a: Matrix, b: Matrix) -> list[RoleDiff]:
    out = []
    for role in sorted(set(a.roles) | set(b.roles)):
        if role not in b.roles:
            out.append(RoleDiff(role, "removed", _entries(a, role), []))
        elif role not in a.roles:
            out.append(RoleDiff(role, "added", [], _entries(b, role)))
        elif _entries(a, role) != _entries(b, role):
            out.append(RoleDiff(role, "changed", _entries(a, role), _entries(b, role)))
    return out


def _exception_key(e: MatrixException) -> tuple:
    return (e.proto, tuple(sorted(e.from_side)), tuple(sorted(e.to_side)))


def _exception_table(matrix: Matrix) -> dict[tuple, tuple[Ports, str]]:
    table: dict[tuple, tuple[Ports, str]] = {}
    for e in matrix.exceptions:
        ports = normalise(e.ports) or ((0, 65535),)
        key = _exception_key(e)
        old, _ = table.get(key, ((), ""))
        table[key] = (normalise([*old, *ports]), str(e.expires or "never"))
    return table


def _exceptions(a: Matrix, b: Matrix) -> list[ExceptionDiff]:
    ta, tb = _exception_table(a), _exception_table(b)
    out = []
    for key in sorted(set(ta) | set(tb)):
        pa, ea = ta.get(key, ((), ""))
        pb, eb = tb.get(key, ((), ""))
        d = ExceptionDiff(*key, added=subtract(pb, pa), removed=subtract(pa, pb))
        if ea and eb and ea != eb:
            d.expires = (ea, eb)
        if d.added or d.removed or d.expires:
            out.append(d)
    return out


def ports_text(proto: str, ports: Ports) -> str:
    """Ports (or ICMP types) as people write them."""
    if proto in PORTLESS:
        return "all types" if ports == ((0, 255),) else "types " + format_ports(ports)
    return format_ports(ports)
