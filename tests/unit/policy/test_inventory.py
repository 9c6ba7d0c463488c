"""Inventories: roles to addresses and hostnames, checked against the matrix's roles;
every problem on its own line with its key."""

import ipaddress

import pytest

from portmatrix.addresses import to_int
from portmatrix.errors import MatrixError
from portmatrix.policy.inventory import collect_inventory, load_inventory


def ip(text: str) -> int:
    return to_int(ipaddress.ip_address(text))


def problems(inv) -> list[tuple[str, int, str, str]]:
    return [(p.severity, p.line, p.key, p.what) for p in inv.problems]


def test_inventory_entries(write_yaml, roles_matrix):
    path = write_yaml(
        "site.yaml",
        """
        roles:
          nodes: [10.1.1.11-10.1.1.16, "fd00::/64"]
          admins: 192.168.10.0/28
          relay: [mail.example.com]
        hosts:
          mail.example.com: [10.1.2.25, "fd00::25"]
          Backup.Example.COM.: 10.9.9.9
        """,
    )
    inv = load_inventory(str(path), roles_matrix)
    assert inv.problems == []
    assert inv.file == str(path)
    assert {role: [e.text for e in entries] for role, entries in inv.roles.items()} == {
        "nodes": ["10.1.1.11-10.1.1.16", "fd00::/64"],
        "admins": ["192.168.10.0/28"],
        "relay": ["mail.example.com"],
    }
    assert inv.role_lines == {"nodes": 2, "admins": 3, "relay": 4}
    assert inv.hosts == {
        "mail.example.com": [ip("10.1.2.25"), ip("fd00::25")],
        "backup.example.com": [ip("10.9.9.9")],
    }


def test_without_a_matrix_any_role_name_is_taken(write_yaml):
    inv = load_inventory(str(write_yaml("site.yaml", "roles:\n  whatever: [10.0.0.1]\n")))
    assert list(inv.roles) == ["whatever"]


def test_role_the_matrix_does_not_define_is_an_error(write_yaml, roles_matrix):
    path = write_yaml("site.yaml", "roles:\n  nodes: [10.0.0.1]\n  workers: [10.0.0.2]\n")
    inv = collect_inventory(str(path), roles_matrix)
    assert problems(inv)[0] == ("error", 3, "roles.workers", "role not defined by the matrix")
    assert "admins" in inv.problems[0].hint
    with pytest.raises(MatrixError) as info:
        load_inventory(str(path), roles_matrix)
    assert str(info.value).startswith(f"{path}:3: roles.workers: role not defined by the matrix")


def test_any_cannot_be_listed(write_yaml, roles_matrix):
    inv = collect_inventory(
        str(write_yaml("site.yaml", "roles:\n  any: [10.0.0.1]\n")), roles_matrix
    )
    assert ("error", 2, "roles.any") in [p[:3] for p in problems(inv)]


def test_roles_the_matrix_uses_but_the_inventory_leaves_empty_are_warnings(
    write_yaml, roles_matrix
):
    path = write_yaml(
        "site.yaml",
        """
        # the site
        roles:
          nodes: [10.0.0.1]
          spare: [10.0.0.9]
          relay: []
        """,
    )
    inv = load_inventory(str(path), roles_matrix)  # warnings do not stop loading
    what = "the matrix uses this role but the inventory gives it no addresses"
    # admins is missing altogether (pointed at `roles:`); relay is listed empty (its line).
    # vendor has addresses fixed by the matrix; spare is used by no rule.
    assert problems(inv) == [
        ("warning", 2, "roles.admins", what),
        ("warning", 5, "roles.relay", what),
    ]


def test_null_role_is_empty(write_yaml, roles_matrix):
    inv = collect_inventory(str(write_yaml("site.yaml", "roles:\n  relay:\n")), roles_matrix)
    assert inv.roles["relay"] == []
    assert ("warning", 2, "roles.relay") in [p[:3] for p in problems(inv)]


def test_malformed_addresses_are_errors_on_their_own_line(write_yaml, roles_matrix):
    path = write_yaml(
        "site.yaml",
        """
        roles:
          nodes:
            - 10.1.1.11
            - 10.1.1.300
            - 10.1.1.20-10.1.1.10
            - "10.0.0.0/40"
          admins: [10.0.0.5-10.0.0.300]
        """,
    )
    inv = collect_inventory(str(path), roles_matrix)
    assert [(p.line, p.key) for p in inv.problems if p.severity == "error"] == [
        (4, "roles.nodes"),
        (5, "roles.nodes"),
        (6, "roles.nodes"),
        (7, "roles.admins"),
    ]
    assert "'10.1.1.300' is not an address" in inv.problems[0].what
    assert "ends before it starts" in inv.problems[1].what
    assert "is not a CIDR block" in inv.problems[2].what
    assert [e.text for e in inv.roles["nodes"]] == ["10.1.1.11"]  # the good ones are kept


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- 10.0.0.1\n", [(1, "roles", "an inventory is a mapping with `roles:`")]),
        ("hosts: {}\n", [(1, "roles", "an inventory is a mapping with `roles:`")]),
        ("roles: [10.0.0.1]\n", [(1, "roles", "must map role names to address lists")]),
        ("roles: {}\nsites: x\n", [(2, "sites", "unknown key")]),
        ("roles: {}\nhosts: [a]\n", [(2, "hosts", "must map hostnames to addresses")]),
        (
            "roles: {}\nhosts:\n  a.example: [10.0.0.1]\n  b.example: [nope, 10.0.0.2]\n",
            [(4, "hosts.b.example", "'nope' is not an address")],
        ),
        ("roles: {}\nhosts:\n  a.example: 10.0.0.0/8\n", [(3, "hosts.a.example", "'10.0.0.0/8'")]),
    ],
)
def test_file_problems(write_yaml, text, expected):
    inv = collect_inventory(str(write_yaml("site.yaml", text)))
    got = [(p.line, p.key, p.what) for p in inv.problems]
    assert [(line, key) for line, key, _ in got] == [(line, key) for line, key, _ in expected]
    for (_, _, what), (_, _, want) in zip(got, expected, strict=True):
        assert want in what
    assert all(p.severity == "error" for p in inv.problems)


def test_malformed_inventory_yaml_is_raised(write_yaml):
    path = write_yaml("site.yaml", "roles:\n  nodes: [10.0.0.1\n")
    with pytest.raises(MatrixError, match="malformed YAML") as info:
        collect_inventory(str(path))
    assert info.value.file == str(path)


def test_duplicate_role_in_inventory_is_raised(write_yaml):
    path = write_yaml("site.yaml", "roles:\n  nodes: [10.0.0.1]\n  nodes: [10.0.0.2]\n")
    with pytest.raises(MatrixError, match="key given twice") as info:
        collect_inventory(str(path))
    assert info.value.where == "3"
