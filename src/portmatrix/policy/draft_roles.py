"""Roles for the addresses that hold none: a draft defines them itself, so it is
self-contained.

Addresses are grouped within a /24 (IPv4) or /64 (IPv6): a group becomes one
role named by its smallest covering prefix, as long as that prefix holds no
address of an existing role (else the group splits at the next bit) and the
group has at least `min_group` addresses; smaller groups give one role per
address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from portmatrix.addresses import V4_MAPPED, AddressIndex, to_text
from portmatrix.policy.roles import real_roles

BUCKET_V4, BUCKET_V6 = 24, 64  # the widest prefix a draft role may have


@dataclass(frozen=True)
class DraftRole:
    name: str
    entry: str  # the address or CIDR block it holds
    first: int
    last: int
    seen: int  # addresses of the traffic in it


def _is_v4(value: int) -> bool:
    return value >> 32 == V4_MAPPED >> 32


def _prefix_text(first: int, length: int) -> str:
    """CIDR text of a 128-bit prefix (IPv4-mapped ones as IPv4)."""
    if _is_v4(first):
        return str(ipaddress.IPv4Network(((first & 0xFFFFFFFF), length - 96)))
    return str(ipaddress.IPv6Network((first, length)))


def role_name(text: str, prefix: str) -> str:
    """A role name from an address or CIDR: lowercase words joined by '-'."""
    if ":" in text:
        address, _, length = text.partition("/")
        exploded = ipaddress.IPv6Address(address).exploded.split(":")
        words = [w.lstrip("0") or "0" for w in exploded] + ([length] if length else [])
    else:
        words = text.replace("/", ".").split(".")
    return "-".join([prefix, *words])


def draft_roles(addresses: list[int], index: AddressIndex, min_group: int) -> list[DraftRole]:
    """Draft roles covering every address of `addresses` (distinct, holding no
    role in `index`); in address order."""
    buckets: dict[int, list[int]] = {}
    for value in sorted(addresses):
        width = BUCKET_V4 + 96 if _is_v4(value) else BUCKET_V6
        buckets.setdefault(value >> (128 - width), []).append(value)
    out: list[DraftRole] = []
    for members in buckets.values():
        out += _split(members, index, min_group)
    return out


def _split(members: list[int], index: AddressIndex, min_group: int) -> list[DraftRole]:
    if len(members) < min_group:
        return [DraftRole(role_name(to_text(a), "host"), to_text(a), a, a, 1) for a in members]
    low, high = members[0], members[-1]
    length = 128 - (low ^ high).bit_length()
    first = low >> (128 - length) << (128 - length)
    last = first | ((1 << (128 - length)) - 1)
    mixes = any(real_roles(index.set_of(s)) for s in index.sets_between(first, last))
    if not mixes:
        text = _prefix_text(first, length)
        return [DraftRole(role_name(text, "net"), text, first, last, len(members))]
    bit = 1 << (127 - length)  # the first bit the members differ in
    zero = [a for a in members if not a & bit]
    one = [a for a in members if a & bit]
    return _split(zero, index, min_group) + _split(one, index, min_group)
