"""The role map: which roles every address holds, from the matrix's fixed
addresses, the inventory, hostnames resolved through the inventory's `hosts:`
and the capture's DNS answers, and the addresses exceptions name directly
(each exception side is a pseudo-role of its own, see `exception_label`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from portmatrix.addresses import AddressIndex, Entry, parse_entry
from portmatrix.policy.inventory import Inventory
from portmatrix.policy.matrix import ANY, Matrix

EXCEPTION = "exception:"  # the prefix of exception pseudo-roles


@dataclass
class RoleMap:
    """Addresses -> role-set ids, with the roles and the hostnames nothing resolved."""

    index: AddressIndex
    unresolved: dict[str, list[str]]  # role -> hostnames with no address
    learned: dict[str, list[int]] = field(default_factory=dict)  # hostname -> from DNS
    hostnames: frozenset[str] = frozenset()  # every hostname a role or exception names

    def roles_of(self, set_id: int) -> frozenset[str]:
        return self.index.set_of(set_id)


def exception_label(exc_id: str, side: str) -> str:
    """The pseudo-role that the addresses named by an exception's side hold."""
    return f"{EXCEPTION}{exc_id}:{side}"


def exception_rule(exc_id: str) -> str:
    """How findings and flow exports name an exception where they name a rule."""
    return f"{EXCEPTION}{exc_id}"


def real_roles(roles) -> set[str]:
    """The roles of a role set, without the exceptions' pseudo-roles."""
    return {r for r in roles if not r.startswith(EXCEPTION)}


def build_role_map(
    matrix: Matrix, inventory: Inventory | None, names: dict[str, list[int]] | None = None
) -> RoleMap:
    """Index every role's addresses (inventory and matrix-fixed) for lookups;
    hostnames resolve through the inventory's `hosts:` and `names` (learned from
    DNS answers).

    Addresses written directly in an exception become a pseudo-role
    (`exception_label`), so exceptions are matched by the same index.
    """
    resolved = {name: list(addrs) for name, addrs in (inventory.hosts if inventory else {}).items()}
    learned = {name.lower().rstrip("."): addrs for name, addrs in (names or {}).items()}
    intervals: list[tuple[str, int, int]] = []
    unresolved: dict[str, list[str]] = {}
    used_learned: dict[str, list[int]] = {}
    hostnames: set[str] = set()

    def add(label: str, entry: Entry) -> None:
        if entry.hostname is None:
            intervals.append((label, entry.first, entry.last))
            return
        hostnames.add(entry.hostname)
        addrs = resolved.get(entry.hostname, [])
        if entry.hostname in learned:
            addrs = sorted({*addrs, *learned[entry.hostname]})
            used_learned[entry.hostname] = sorted(learned[entry.hostname])
        if not addrs:
            unresolved.setdefault(label, []).append(entry.hostname)
        intervals.extend((label, a, a) for a in addrs)

    for role in matrix.roles.values():
        for entry in role.entries:
            add(role.name, entry)
    if inventory:
        for role, entries in inventory.roles.items():
            for entry in entries:
                add(role, entry)
    for exc in matrix.exceptions:
        for side, values in (("from", exc.from_side), ("to", exc.to_side)):
            for value in values:
                if value in matrix.roles or value == ANY:
                    continue
                add(exception_label(exc.id, side), parse_entry(value))
    return RoleMap(AddressIndex(intervals), unresolved, used_learned, frozenset(hostnames))
