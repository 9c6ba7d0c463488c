"""The role map: which roles each address holds, from the inventory, the matrix's
fixed addresses, hostnames (inventory `hosts:` and DNS answers) and exceptions."""

from __future__ import annotations

import ipaddress

import numpy as np

from portmatrix.addresses import split_int, to_int
from portmatrix.policy.inventory import load_inventory
from portmatrix.policy.matrix import load_matrix
from portmatrix.policy.roles import (
    EXCEPTION,
    build_role_map,
    exception_label,
    exception_rule,
    real_roles,
)
from support.site import ROLES_MATRIX


def ip(text: str) -> int:
    return to_int(ipaddress.ip_address(text))


def roles_at(role_map, text: str) -> set[str]:
    hi, lo = split_int([ip(text)])
    return set(role_map.roles_of(int(role_map.index.lookup(hi, lo)[0])))


def test_role_map_from_inventory_matrix_and_exceptions(site, roles_matrix):
    inv = load_inventory(str(site("roles").inventory), roles_matrix)
    role_map = build_role_map(roles_matrix, inv)
    assert roles_at(role_map, "10.1.1.11") == {"nodes"}
    assert roles_at(role_map, "10.1.1.16") == {"nodes", "admins"}  # several roles
    assert roles_at(role_map, "10.1.1.17") == set()
    assert roles_at(role_map, "192.168.10.15") == {"admins"}
    assert roles_at(role_map, "10.1.2.25") == {"relay"}  # through hosts:
    assert roles_at(role_map, "208.83.110.20") == {"vendor"}  # fixed by the matrix
    assert roles_at(role_map, "10.9.9.9") == {exception_label("backup", "from")}
    assert roles_at(role_map, "10.8.255.1") == {"exception:backup:from"}
    assert role_map.unresolved == {
        "relay": ["ghost.example.com"],
        "vendor": ["files.vendor.example"],
    }


def test_role_map_uses_names_learned_elsewhere(site, roles_matrix):
    inv = load_inventory(str(site("roles").inventory), roles_matrix)
    learned = {"GHOST.example.com.": [ip("10.7.7.7")], "mail.example.com": [ip("10.7.7.8")]}
    role_map = build_role_map(roles_matrix, inv, learned)
    assert roles_at(role_map, "10.7.7.7") == {"relay"}
    assert roles_at(role_map, "10.7.7.8") == {"relay"}
    assert roles_at(role_map, "10.1.2.25") == {"relay"}  # the hosts: table still counts
    assert role_map.unresolved == {"vendor": ["files.vendor.example"]}


def test_role_map_leaves_the_inventory_as_it_was(site, roles_matrix):
    inv = load_inventory(str(site("roles").inventory), roles_matrix)
    before = {name: list(addrs) for name, addrs in inv.hosts.items()}
    build_role_map(roles_matrix, inv, {"mail.example.com": [ip("10.7.7.8")]})
    assert inv.hosts == before
    role_map = build_role_map(roles_matrix, inv)
    assert roles_at(role_map, "10.7.7.8") == set()


def test_role_map_without_inventory(roles_matrix):
    role_map = build_role_map(roles_matrix, None)
    assert roles_at(role_map, "208.83.110.20") == {"vendor"}
    assert roles_at(role_map, "10.1.1.11") == set()


def test_exception_naming_roles_adds_no_pseudo_role(write_yaml):
    text = ROLES_MATRIX.replace('from: [10.9.9.9, "10.8.0.0/16"]', "from: [admins, any]")
    m = load_matrix([str(write_yaml("matrix.yaml", text))])
    labels = set().union(*build_role_map(m, None).index.sets)
    assert not any(label.startswith("exception:") for label in labels)


def test_exception_label():
    assert exception_label("backup", "to") == "exception:backup:to"


def test_exception_rule_and_real_roles():
    assert exception_rule("backup") == "exception:backup"
    assert exception_label("backup", "from").startswith(EXCEPTION)
    assert exception_rule("backup").startswith(EXCEPTION)
    roles = {"nodes", exception_label("backup", "from"), "admins", exception_rule("x")}
    assert real_roles(roles) == {"nodes", "admins"}
    assert real_roles(frozenset()) == set()


def test_the_role_map_knows_every_hostname_and_which_were_learned(site, roles_matrix):
    inv = load_inventory(str(site("roles").inventory), roles_matrix)
    learned = {"ghost.example.com": [ip("10.7.7.7")], "unasked.example.org": [ip("10.7.7.9")]}
    role_map = build_role_map(roles_matrix, inv, learned)
    # Every hostname a role names, resolved or not: what DNS learning keeps.
    assert role_map.hostnames == {"mail.example.com", "ghost.example.com", "files.vendor.example"}
    # Only the learned names a role uses are reported as learned.
    assert role_map.learned == {"ghost.example.com": [ip("10.7.7.7")]}
    assert roles_at(role_map, "10.7.7.9") == set()


def test_a_claimed_name_widens_its_flows_destination_only(roles_matrix):
    from portmatrix.decode import names
    from portmatrix.flows.model import Flows

    node, edge = ip("10.1.1.11"), ip("203.0.113.5")
    hi = [node >> 64, node >> 64, node >> 64]
    flows = Flows.from_columns(
        {
            "proto": [6, 6, 6],
            "init_hi": hi,
            "init_lo": [node & (2**64 - 1)] * 3,
            "init_port": [40000, 40001, 40000],
            "resp_hi": [edge >> 64] * 3,
            "resp_lo": [edge & (2**64 - 1)] * 3,
            "resp_port": [443, 443, 443],
            "first_ts": [0, 0, 100],  # the third: the same ports, later
            "last_ts": [10, 10, 110],
        }
    )
    claims = names.Claims()
    claims.names = ["files.vendor.example"]
    for col, value in {
        "src_hi": node >> 64,
        "src_lo": node & (2**64 - 1),
        "dst_hi": edge >> 64,
        "dst_lo": edge & (2**64 - 1),
        "sport": 40000,
        "dport": 443,
        "proto": 6,
        "ts": 5,
        "how": names.TLS_SNI,
        "name": 0,
    }.items():
        setattr(claims, col, np.array([value], dtype=getattr(claims, col).dtype))
    role_map = build_role_map(roles_matrix, None, claims=claims)
    _, resp = role_map.flow_roles(flows)
    assert [set(role_map.roles_of(int(r))) for r in resp] == [{"vendor"}, set(), set()]
    assert role_map.named["files.vendor.example"].destinations == {edge}
    # With the name's address known otherwise, a claim elsewhere is not believed.
    role_map = build_role_map(
        roles_matrix, None, {"files.vendor.example": [ip("198.51.100.1")]}, claims
    )
    _, resp = role_map.flow_roles(flows)
    assert not any(role_map.roles_of(int(r)) for r in resp)
    assert role_map.named["files.vendor.example"].contradicting == {edge}
