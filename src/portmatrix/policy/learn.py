"""Draft a matrix from traffic: role-level rules from the established flows.

Only established flows teach; refused, unanswered, blocked and mid-stream flows
are listed as seen but not learned, and so are flows of protocols a matrix
cannot name (GRE, ESP, OSPF, ...). Each flow's ends get roles from the
inventory (and a base matrix's fixed addresses); addresses with no role get
draft roles (`draft_roles`). A host with several roles is attributed, per
service, to the role that explains the traffic (the one hosts holding it alone
use for that service), else to its most specific role (fewest addresses); the
choice is stated. Flows then group by (initiator role, responder role,
protocol), their responder ports generalise into port sets (`portsets`), and
each port set is one rule, kept when it clears `min_flows` and `min_hosts`,
`required` when seen in at least `required_share` of the time buckets.

Everything per flow is numpy; Python loops run over distinct role sets, role
pairs and ports, never over flows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import product

import numpy as np

from portmatrix.addresses import parse_entry, to_text
from portmatrix.decode.transport import ICMP, ICMPV6
from portmatrix.flows.model import ESTABLISHED, OUTCOMES, Flows
from portmatrix.policy.classify import ALLOWED, classify, matrix_port
from portmatrix.policy.draft_roles import draft_roles
from portmatrix.policy.inventory import Inventory
from portmatrix.policy.lookup import RuleIndex
from portmatrix.policy.matrix import Matrix, Role, Rule
from portmatrix.policy.portsets import PortSet, RangeOptions, generalise
from portmatrix.policy.roles import RoleMap, build_role_map, real_roles
from portmatrix.policy.schema import PROTOS
from portmatrix.policy.services import service_name
from portmatrix.textforms import PROTO_NUMBERS, iso, proto_name

UNLEARNED_SHOWN = 40  # groups of flows seen but not learned listed in the draft


@dataclass(frozen=True)
class DraftOptions:
    min_flows: int = 1  # flows a rule needs to be drafted
    min_hosts: int = 1  # distinct initiating hosts a rule needs
    ranges: RangeOptions = field(default_factory=RangeOptions)
    group_min: int = 4  # role-less addresses sharing a prefix before it is one role
    buckets: int = 10  # time buckets the input window is cut into (at most 64)
    required_share: float = 0.9  # share of buckets a rule is seen in to be required


@dataclass(frozen=True)
class Evidence:
    """What a drafted rule rests on."""

    flows: int
    initiators: int  # distinct initiating hosts
    responders: int
    first: str  # ISO 8601 UTC
    last: str
    example: str  # "a → b:port"
    buckets: int  # time buckets it was seen in


@dataclass(frozen=True)
class DraftRule:
    rule: Rule
    evidence: Evidence
    share: float  # of the time buckets


@dataclass(frozen=True)
class Unlearned:
    """Flows seen but not learned, for one role pair, protocol and port."""

    from_role: str
    to_role: str
    proto: str
    port: int
    flows: int
    outcomes: dict[str, int]
    example: str


@dataclass
class Draft:
    name: str
    roles: dict[str, Role]  # every role the draft defines, in file order
    origins: dict[str, str]  # role -> "inventory" | "base" | "draft"
    rules: list[DraftRule]
    kept_out: list[DraftRule]  # below --min-flows / --min-hosts
    unlearned: list[Unlearned]  # the largest groups
    unlearned_more: int  # groups not listed
    choices: list[str]  # how hosts with several roles were attributed
    counts: dict[str, int]  # flows, established, taught, base_allowed, out_of_scope, ...
    window: tuple[str, str] | None
    options: DraftOptions


def learn(
    flows: Flows,
    base: Matrix | None,
    inventory: Inventory | None,
    dns: dict[str, list[int]] | None = None,
    options: DraftOptions | None = None,
    name: str = "learned",
) -> Draft:
    """The draft matrix `flows` teach (with `base`: only what it does not allow)."""
    options = options or DraftOptions()
    if not 1 <= options.buckets <= 64:  # a bit each in a uint64
        raise ValueError(f"buckets must be 1-64, not {options.buckets}")
    known = base or Matrix(name="")
    role_map = build_role_map(known, inventory, dns)
    init_set = role_map.index.lookup(flows["init_hi"], flows["init_lo"])
    resp_set = role_map.index.lookup(flows["resp_hi"], flows["resp_lo"])
    has_role = np.array([bool(real_roles(s)) for s in role_map.index.sets])
    # With an inventory, flows between two role-less addresses are out of scope, as
    # `check` counts them; without one, every address gets a draft role.
    scoped = has_role[init_set] | has_role[resp_set] if inventory else np.ones(len(flows), bool)
    allowed = np.zeros(len(flows), bool)
    if base is not None:
        allowed = classify(flows, RuleIndex(base), role_map).verdict == ALLOWED
    established = flows["outcome"] == ESTABLISHED
    # a matrix names only these protocols: GRE, ESP, OSPF, ... cannot be drafted
    nameable = np.isin(flows["proto"], [PROTO_NUMBERS[p] for p in PROTOS])
    teach = established & nameable & scoped & ~allowed
    roles, origins = _known_roles(base, inventory)
    drafted = _draft_roles(flows, teach, init_set, resp_set, has_role, role_map, roles, options)
    for role in drafted:
        roles[role.name], origins[role.name] = role, "draft"
    final_map = build_role_map(Matrix(name="", roles=roles), inventory, dns)
    taught = flows.take(teach)
    pairs, pair_of, choices = _attribute(taught, final_map)
    rules = _rules(taught, pairs, pair_of, flows, base, options)
    keep: list[DraftRule] = []
    kept_out: list[DraftRule] = []
    for r in rules:
        enough = (
            r.evidence.flows >= options.min_flows and r.evidence.initiators >= options.min_hosts
        )
        (keep if enough else kept_out).append(r)
    lost = scoped & ~allowed & ~teach  # neither taught, nor allowed, nor out of scope
    unlearned, more = _unlearned(flows.take(lost), final_map)
    counts = {
        "flows": len(flows),
        "established": int(established.sum()),
        "taught": int(teach.sum()),
        "base_allowed": int((established & allowed).sum()),
        "out_of_scope": int((established & ~scoped).sum()),
        "not_learned": int(lost.sum()),
        "unnameable": int((established & ~nameable & scoped & ~allowed).sum()),
        "kept_out_flows": sum(r.evidence.flows for r in kept_out),
    }
    window = None
    if len(flows):
        first, last = iso(np.array([flows["first_ts"].min(), flows["last_ts"].max()]))
        window = (str(first), str(last))
    return Draft(
        name, roles, origins, keep, kept_out, unlearned, more, choices, counts, window, options
    )


def _known_roles(
    base: Matrix | None, inventory: Inventory | None
) -> tuple[dict[str, Role], dict[str, str]]:
    """The roles the draft declares before any draft role: every role of the base
    (copied with its fixed addresses, so the draft loads alone and layers on the
    base), else every role of the inventory."""
    if base is not None:
        return dict(base.roles), dict.fromkeys(base.roles, "base")
    names = list(inventory.roles) if inventory else []
    where = inventory.file if inventory else ""
    roles = {n: Role(n, f"listed in the inventory ({where})") for n in names}
    return roles, dict.fromkeys(names, "inventory")


def _draft_roles(flows, teach, init_set, resp_set, has_role, role_map, taken, options):
    """Draft roles for the role-less ends of the teaching flows, with names no
    other role has."""
    sides = []
    for s, hi, lo in ((init_set, "init_hi", "init_lo"), (resp_set, "resp_hi", "resp_lo")):
        bare = teach & ~has_role[s]
        sides.append(np.stack([flows[hi][bare], flows[lo][bare]], axis=1))
    pairs = np.unique(np.concatenate(sides), axis=0)
    addresses = [(int(h) << 64) | int(low) for h, low in pairs.tolist()]
    out = []
    for role in draft_roles(addresses, role_map.index, options.group_min):
        name, k = role.name, 2
        while name in taken:
            name, k = f"{role.name}-{k}", k + 1
        description = (
            f"drafted: {role.seen} addresses with no role seen in {role.entry}"
            if role.first != role.last
            else "drafted: an address with no role"
        )
        out.append(Role(name, description, (parse_entry(role.entry),)))
    return out


def _address(flows: Flows, end: str, at: int) -> str:
    """The text of flow `at`'s initiator ("init") or responder ("resp") address."""
    return to_text((int(flows[f"{end}_hi"][at]) << 64) | int(flows[f"{end}_lo"][at]))


def _role_text(role_map: RoleMap, set_id: int) -> str:
    return ", ".join(sorted(real_roles(role_map.roles_of(set_id)))) or "no role"


def _group_keys(flows: Flows, role_map: RoleMap) -> np.ndarray:
    """Per flow, one int64 of (protocol, matrix port, initiator role set,
    responder role set): bits 56, 40, 20 and 0, as the groupers unpack them."""
    init_set = role_map.index.lookup(flows["init_hi"], flows["init_lo"])
    resp_set = role_map.index.lookup(flows["resp_hi"], flows["resp_lo"])
    proto = flows["proto"].astype(np.int64)
    port = matrix_port(flows).astype(np.int64)
    return (proto << 56) | (port << 40) | (init_set.astype(np.int64) << 20) | resp_set


def _attribute(flows: Flows, role_map: RoleMap):
    """Per flow, the index of its (initiator role, responder role) in `pairs`,
    and the sentences saying how hosts with several roles were attributed."""
    uniq, first, inverse = np.unique(
        _group_keys(flows, role_map), return_index=True, return_inverse=True
    )
    groups = []
    for value in uniq.tolist():
        p, q = (value >> 56) & 0xFF, (value >> 40) & 0xFFFF
        i_set, r_set = (value >> 20) & 0xFFFFF, value & 0xFFFFF
        groups.append(
            (
                p,
                q,
                sorted(real_roles(role_map.roles_of(i_set))),
                sorted(real_roles(role_map.roles_of(r_set))),
            )
        )
    # What hosts holding one role use: the traffic a role explains.
    plain = {(i[0], r[0], p, q) for p, q, i, r in groups if len(i) == 1 and len(r) == 1}
    sizes = role_map.index.sizes()

    def specific(pair: tuple[str, str]) -> tuple:
        return (sizes.get(pair[0], 0), pair[0], sizes.get(pair[1], 0), pair[1])

    pairs: list[tuple[str, str]] = []
    pair_ids: dict[tuple[str, str], int] = {}
    chosen = np.zeros(len(groups), np.int64)
    said: dict[tuple, list[str]] = {}
    for g, (p, q, i_roles, r_roles) in enumerate(groups):
        candidates = list(product(i_roles, r_roles))
        explained = [c for c in candidates if (*c, p, q) in plain]
        pick = min(explained or candidates, key=specific)
        if pick not in pair_ids:
            pair_ids[pick] = len(pairs)
            pairs.append(pick)
        chosen[g] = pair_ids[pick]
        for side, roles, role in (("initiator", i_roles, pick[0]), ("responder", r_roles, pick[1])):
            if len(roles) > 1:
                why = "hosts holding it alone do the same" if explained else "fewest addresses"
                end = "init" if side == "initiator" else "resp"
                host = _address(flows, end, int(first[g]))
                key = (", ".join(roles), side, role, why, host)
                said.setdefault(key, []).append(_service(proto_name(p), q))
    choices = [
        f"hosts holding {roles} (e.g. {host}), as {side} of {', '.join(sorted(set(services)))}: "
        f"taken as {role} ({why})"
        for (roles, side, role, why, host), services in sorted(said.items())
    ]
    return pairs, chosen[inverse.reshape(-1)], choices


def _service(proto: str, port: int) -> str:
    return f"{proto} type {port}" if proto in ("icmp", "icmpv6") else f"{proto}/{port}"


def _rules(
    flows: Flows,
    pairs: list[tuple[str, str]],
    pair_of: np.ndarray,
    everything: Flows,
    base: Matrix | None,
    options: DraftOptions,
) -> list[DraftRule]:
    """One draft rule per role pair, protocol and port set, with its evidence."""
    if not len(flows):
        return []
    proto = flows["proto"].astype(np.int64)
    port = matrix_port(flows).astype(np.int64)
    key = pair_of * 256 + proto
    keyport = (key << 16) | port
    uniq, kp_inverse, kp_counts = np.unique(keyport, return_inverse=True, return_counts=True)
    ukeys, uports = uniq >> 16, uniq & 0xFFFF
    sets: list[tuple[int, PortSet | None, list[int]]] = []  # (key, port set, icmp types)
    cand_of = np.zeros(len(uniq), np.int64)
    bounds = np.flatnonzero(np.diff(ukeys)) + 1
    for lo_i, hi_i in zip(np.r_[0, bounds], np.r_[bounds, len(uniq)], strict=True):
        k = int(ukeys[lo_i])
        if k % 256 in (ICMP, ICMPV6):
            cand_of[lo_i:hi_i] = len(sets)
            sets.append((k, None, uports[lo_i:hi_i].tolist()))
            continue
        ports = uports[lo_i:hi_i]
        for ps in generalise(ports, kp_counts[lo_i:hi_i], options.ranges):
            inside = (ports >= ps.lo) & (ports <= ps.hi)
            cand_of[lo_i:hi_i][inside] = len(sets)
            sets.append((k, ps, []))
    cand = cand_of[kp_inverse.reshape(-1)]
    evidence = _evidence(flows, cand, len(sets), everything, options.buckets)
    used: dict[int, set[tuple[str, int]]] = {}  # per role pair, its (proto, port)s
    for k, q in zip(ukeys.tolist(), uports.tolist(), strict=True):
        used.setdefault(k // 256, set()).add((proto_name(k % 256), q))
    rules = []
    for c, (k, ps, types) in enumerate(sets):
        from_role, to_role = pairs[k // 256]
        proto = proto_name(k % 256)
        if ps is None:
            rule = Rule("", _icmp_service(proto, types), proto, (), from_role, to_role)
            rule = replace(rule, icmp_types=tuple(types))
        else:
            service = service_name(proto, ps, base, used[k // 256])
            rule = Rule("", service, proto, ((ps.lo, ps.hi),), from_role, to_role)
            rule = replace(rule, description=ps.note)
        rules.append(DraftRule(rule, evidence[c], 0.0))
    rules.sort(key=lambda r: (r.rule.from_role, r.rule.to_role, r.rule.proto, r.rule.ports))
    return _with_ids(rules, base, options)


def _evidence(
    flows: Flows, cand: np.ndarray, n: int, everything: Flows, buckets: int
) -> list[Evidence]:
    count = np.bincount(cand, minlength=n)
    hosts = []
    for hi, lo in (("init_hi", "init_lo"), ("resp_hi", "resp_lo")):
        rows = np.stack([cand.astype(np.uint64), flows[hi], flows[lo]], axis=1)
        distinct = np.unique(rows, axis=0)
        hosts.append(np.bincount(distinct[:, 0].astype(np.int64), minlength=n))
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(first, cand, flows["first_ts"])
    np.maximum.at(last, cand, flows["last_ts"])
    masks = np.zeros(n, np.uint64)
    np.bitwise_or.at(masks, cand, _bucket_masks(flows, everything, buckets))
    order = np.lexsort((flows["first_ts"], cand))
    starts = order[np.r_[0, np.flatnonzero(np.diff(cand[order])) + 1]]
    init = [_address(flows, "init", at) for at in starts.tolist()]
    resp = [_address(flows, "resp", at) for at in starts.tolist()]
    ports = matrix_port(flows)[starts].tolist()
    protos = flows["proto"][starts].tolist()
    firsts, lasts = iso(first), iso(last)
    out = []
    for c in range(n):
        where = (
            f"{resp[c]} ({proto_name(protos[c])} type {ports[c]})"
            if protos[c] in (ICMP, ICMPV6)
            else f"{resp[c]}:{ports[c]}"
        )
        out.append(
            Evidence(
                flows=int(count[c]),
                initiators=int(hosts[0][c]),
                responders=int(hosts[1][c]),
                first=str(firsts[c]),
                last=str(lasts[c]),
                example=f"{init[c]} → {where}",
                buckets=int(masks[c]).bit_count(),
            )
        )
    return out


def _bucket_masks(flows: Flows, everything: Flows, buckets: int) -> np.ndarray:
    """Per flow, a bit for each of `buckets` equal slices of the whole input's time
    window that the flow was active in."""
    t0 = int(everything["first_ts"].min())
    span = max(int(everything["last_ts"].max()) - t0, 1)

    def bucket(ts):
        return np.clip((ts - t0) * buckets // span, 0, buckets - 1).astype(np.uint64)

    lo, hi = bucket(flows["first_ts"]), bucket(flows["last_ts"])
    ones = np.uint64(0xFFFFFFFFFFFFFFFF)
    upto = ones >> (np.uint64(63) - hi)  # bits 0..hi
    below = (np.uint64(1) << lo) - np.uint64(1)  # bits 0..lo-1
    return upto & ~below


def _icmp_service(proto: str, types: list[int]) -> str:
    echo = {"icmp": 8, "icmpv6": 128}[proto]
    if types == [echo]:
        return "ICMP echo" if proto == "icmp" else "ICMPv6 echo"
    return f"{proto.upper().replace('V6', 'v6')} types {', '.join(map(str, types))}"


def _with_ids(rules: list[DraftRule], base: Matrix | None, options: DraftOptions):
    """Stable ids from what a rule allows (roles, protocol, ports), unique against
    each other and the base's; `required` from the share of time buckets."""
    taken = {r.id for r in base.rules} if base else set()
    out = []
    for r in rules:
        rule = r.rule
        what = f"{rule.ports[0][0]}" if rule.ports else ""
        if rule.ports and rule.ports[0][1] != rule.ports[0][0]:
            what += f"-{rule.ports[0][1]}"
        words = [rule.from_role, "to", rule.to_role, rule.proto, what]
        base_id = "-".join(w for w in words if w).replace("_", "-")
        rid, k = base_id, 2
        while rid in taken:
            rid, k = f"{base_id}-{k}", k + 1
        taken.add(rid)
        share = r.evidence.buckets / options.buckets
        required = share >= options.required_share
        out.append(DraftRule(replace(rule, id=rid, required=required), r.evidence, share))
    return out


def _unlearned(flows: Flows, role_map: RoleMap) -> tuple[list[Unlearned], int]:
    """Flows that did not teach, grouped by role pair, protocol, port: the largest
    UNLEARNED_SHOWN groups, and how many more there are."""
    if not len(flows):
        return [], 0
    uniq, first, inverse = np.unique(
        _group_keys(flows, role_map), return_index=True, return_inverse=True
    )
    inverse = inverse.reshape(-1)
    outcomes = np.zeros((len(uniq), len(OUTCOMES)), np.int64)
    np.add.at(outcomes, (inverse, flows["outcome"].astype(np.int64)), 1)
    total = outcomes.sum(axis=1)
    order = np.lexsort((uniq, -total))[:UNLEARNED_SHOWN]
    out = []
    for g in order.tolist():
        value, at = int(uniq[g]), int(first[g])
        p, q = (value >> 56) & 0xFF, (value >> 40) & 0xFFFF
        out.append(
            Unlearned(
                from_role=_role_text(role_map, (value >> 20) & 0xFFFFF),
                to_role=_role_text(role_map, value & 0xFFFFF),
                proto=proto_name(p),
                port=q,
                flows=int(total[g]),
                outcomes={
                    o: int(c) for o, c in zip(OUTCOMES, outcomes[g].tolist(), strict=True) if c
                },
                example=f"{_address(flows, 'init', at)} → {_address(flows, 'resp', at)}",
            )
        )
    return out, max(0, len(uniq) - UNLEARNED_SHOWN)
