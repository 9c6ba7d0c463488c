"""Addresses with no role become draft roles: one per covering prefix that holds no
address of a role, or one per address below the threshold."""

from __future__ import annotations

import ipaddress

from portmatrix.addresses import AddressIndex, parse_entry, to_int
from portmatrix.policy.draft_roles import draft_roles, role_name
from portmatrix.policy.matrix import is_role_name


def addr(text: str) -> int:
    return to_int(ipaddress.ip_address(text))


def index(**roles: list[str]) -> AddressIndex:
    intervals = []
    for role, entries in roles.items():
        for text in entries:
            e = parse_entry(text)
            intervals.append((role, e.first, e.last))
    return AddressIndex(intervals)


def test_a_group_within_a_24_is_one_role_named_by_its_smallest_covering_prefix():
    seen = [addr(f"10.60.0.{i}") for i in (5, 6, 7, 9)]
    roles = draft_roles(seen, index(nodes=["10.20.0.0/24"]), min_group=4)
    assert [(r.name, r.entry, r.seen) for r in roles] == [("net-10-60-0-0-28", "10.60.0.0/28", 4)]


def test_below_the_threshold_each_address_is_its_own_role():
    seen = [addr("10.60.0.5"), addr("10.60.0.6")]
    roles = draft_roles(seen, index(), min_group=4)
    assert [(r.name, r.entry) for r in roles] == [
        ("host-10-60-0-5", "10.60.0.5"),
        ("host-10-60-0-6", "10.60.0.6"),
    ]


def test_a_prefix_that_would_mix_in_a_role_splits():
    # the eight share 10.60.0.0/28, which holds the admin 10.60.0.8
    seen = [addr(f"10.60.0.{i}") for i in (1, 2, 3, 5, 9, 10, 12, 14)]
    roles = draft_roles(seen, index(admins=["10.60.0.8"]), min_group=4)
    # .1-.5 fit in 10.60.0.0/29 (no role inside); .9-.14's /29 holds .8, and
    # its halves have fewer than four addresses: one role each
    assert [r.entry for r in roles] == [
        "10.60.0.0/29",
        "10.60.0.9",
        "10.60.0.10",
        "10.60.0.12",
        "10.60.0.14",
    ]
    assert not any(r.first <= addr("10.60.0.8") <= r.last for r in roles)


def test_addresses_in_different_24s_are_never_grouped():
    seen = [addr("10.60.0.5"), addr("10.60.1.5"), addr("10.60.2.5"), addr("10.60.3.5")]
    roles = draft_roles(seen, index(), min_group=2)
    assert [r.entry for r in roles] == ["10.60.0.5", "10.60.1.5", "10.60.2.5", "10.60.3.5"]


def test_ipv6_groups_within_a_64_and_names_are_role_names():
    seen = [addr(f"fd00:9::{i}") for i in (1, 2, 3, 4)] + [addr("2001:db8::1")]
    roles = draft_roles(seen, index(), min_group=4)
    assert [r.entry for r in roles] == ["2001:db8::1", "fd00:9::/125"]
    assert all(is_role_name(r.name) for r in roles)
    assert role_name("::1", "host") == "host-0-0-0-0-0-0-0-1"
