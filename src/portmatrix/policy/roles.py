"""The role map: which roles every address holds, from the matrix's fixed
addresses, the inventory, hostnames resolved through the inventory's `hosts:`
and the capture's DNS answers, and the addresses exceptions name directly
(each exception side is a pseudo-role of its own, see `exception_label`).

Besides addresses, a flow's destination holds the roles of a hostname its
client named (TLS SNI, HTTP Host, QUIC: `decode.names`) — that flow's only, as
the client's word is no more than that. A name whose addresses are known
otherwise (the inventory's `hosts:`, DNS answers in the capture) is believed
only for a destination among them: a client naming it to another address is
listed as contradicting them (a forged name, or an address of the pool the
capture never saw resolved), and its flow keeps the roles its address has.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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
    claims: object = None  # decode.names.Claims: names clients gave their flows' destinations
    name_roles: dict[str, frozenset[str]] = field(default_factory=dict)  # hostname -> roles
    known: dict[str, frozenset[int]] = field(default_factory=dict)  # hostname -> addresses
    # that the inventory or DNS answers give it (a claim elsewhere contradicts them)
    named: dict[str, NamedFlows] = field(default_factory=dict)  # by `flow_roles`, for notices

    def roles_of(self, set_id: int) -> frozenset[str]:
        return self.index.set_of(set_id)

    def flow_roles(self, flows) -> tuple[np.ndarray, np.ndarray]:
        """(initiator, responder) role-set ids of each flow: their addresses', the
        responder's with the roles of a hostname the flow's client named."""
        init = self.index.lookup(flows["init_hi"], flows["init_lo"])
        resp = self.index.lookup(flows["resp_hi"], flows["resp_lo"])
        self.named = {}
        if self.claims is None or not len(self.claims) or not len(flows):
            return init, resp
        flow, claim = claimed_flows(flows, self.claims)
        believed = np.zeros(len(flow), bool)
        for k, (f, c) in enumerate(zip(flow.tolist(), claim.tolist(), strict=True)):
            name = self.claims.names[int(self.claims.name[c])]
            dest = (int(flows["resp_hi"][f]) << 64) | int(flows["resp_lo"][f])
            known = self.known.get(name)
            believed[k] = known is None or dest in known
            entry = self.named.setdefault(name, NamedFlows())
            entry.add(f, dest, int(self.claims.how[c]), bool(believed[k]))
        widened: dict[tuple[int, int], int] = {}
        for f, c in zip(flow[believed].tolist(), claim[believed].tolist(), strict=True):
            key = (int(resp[f]), int(self.claims.name[c]))
            if key not in widened:
                name = self.claims.names[key[1]]
                roles = self.roles_of(key[0]) | self.name_roles.get(name, frozenset())
                widened[key] = self.index.set_id(roles)
            resp[f] = widened[key]
        return init, resp


@dataclass
class NamedFlows:
    """The flows whose clients named one hostname: how, to which destinations."""

    flows: set[int] = field(default_factory=set)
    how: set[int] = field(default_factory=set)  # decode.names.HOW codes
    destinations: set[int] = field(default_factory=set)  # believed
    contradicting: set[int] = field(default_factory=set)  # destinations not believed

    def add(self, flow: int, dest: int, how: int, believed: bool) -> None:
        self.flows.add(flow)
        self.how.add(how)
        (self.destinations if believed else self.contradicting).add(dest)


def claimed_flows(flows, claims) -> tuple[np.ndarray, np.ndarray]:
    """(flow, claim) index pairs: the claim's packet went from the flow's initiator
    to its responder (same ports and protocol) while the flow lasted."""
    from portmatrix.flows.records import flow_key

    minus = np.full(len(claims), -1)
    keys, _, _ = flow_key(
        claims.src_hi,
        claims.src_lo,
        claims.sport,
        claims.dst_hi,
        claims.dst_lo,
        claims.dport,
        claims.proto,
        minus,
    )
    fkeys, _, _ = flow_key(
        flows["init_hi"],
        flows["init_lo"],
        flows["init_port"],
        flows["resp_hi"],
        flows["resp_lo"],
        flows["resp_port"],
        flows["proto"],
        flows["icmp_req"],
    )
    order = np.argsort(fkeys, kind="stable")
    sorted_keys = fkeys[order]
    pos = np.searchsorted(sorted_keys, keys)
    pairs_f, pairs_c = [], []
    todo = np.arange(len(keys))
    while len(todo):  # a key may stand for several flows (a port reused)
        inside = pos[todo] < len(order)
        todo = todo[inside]
        at = order[pos[todo]]
        same = sorted_keys[pos[todo]] == keys[todo]
        todo, at = todo[same], at[same]
        hit = (
            (flows["init_hi"][at] == claims.src_hi[todo])
            & (flows["init_lo"][at] == claims.src_lo[todo])
            & (flows["init_port"][at] == claims.sport[todo])
            & (flows["resp_hi"][at] == claims.dst_hi[todo])
            & (flows["resp_lo"][at] == claims.dst_lo[todo])
            & (flows["proto"][at] == claims.proto[todo])
            & (flows["first_ts"][at] <= claims.ts[todo])
            & (claims.ts[todo] <= flows["last_ts"][at])
        )
        pairs_f.append(at[hit])
        pairs_c.append(todo[hit])
        pos[todo] += 1
    if not pairs_f:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(pairs_f), np.concatenate(pairs_c)


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
    matrix: Matrix,
    inventory: Inventory | None,
    names: dict[str, list[int]] | None = None,
    claims=None,
) -> RoleMap:
    """Index every role's addresses (inventory and matrix-fixed) for lookups;
    hostnames resolve through the inventory's `hosts:` and `names` (learned from
    DNS answers); `claims` (decode.names.Claims) give the destinations of the
    flows whose clients named a hostname its roles (`RoleMap.flow_roles`).

    Addresses written directly in an exception become a pseudo-role
    (`exception_label`), so exceptions are matched by the same index.
    """
    resolved = {name: list(addrs) for name, addrs in (inventory.hosts if inventory else {}).items()}
    learned = {name.lower().rstrip("."): addrs for name, addrs in (names or {}).items()}
    intervals: list[tuple[str, int, int]] = []
    unresolved: dict[str, list[str]] = {}
    used_learned: dict[str, list[int]] = {}
    hostnames: set[str] = set()
    name_roles: dict[str, set[str]] = {}

    def add(label: str, entry: Entry) -> None:
        if entry.hostname is None:
            intervals.append((label, entry.first, entry.last))
            return
        hostnames.add(entry.hostname)
        name_roles.setdefault(entry.hostname, set()).add(label)
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
    known = {
        name: frozenset(resolved.get(name, [])) | frozenset(learned.get(name, []))
        for name in hostnames
        if resolved.get(name) or learned.get(name)
    }
    return RoleMap(
        AddressIndex(intervals),
        unresolved,
        used_learned,
        frozenset(hostnames),
        claims=claims,
        name_roles={name: frozenset(roles) for name, roles in name_roles.items()},
        known=known,
    )
