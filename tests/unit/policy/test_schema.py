"""The declared formats: the docs carry exactly the generated reference, and the
loaders accept every key the tables declare and nothing else."""

from __future__ import annotations

import pytest

from portmatrix.policy.inventory import collect_inventory
from portmatrix.policy.matrix import collect_matrix
from portmatrix.policy.schema import EXCEPTION, MATRIX, ROLE, RULE, SECTIONS, reference_markdown
from support.paths import REPO

EVERY_KEY = """\
name: all-keys
description: every key the schema declares
vendor: {title: T, url: https://example.com, date: "2024-01"}
roles:
  nodes:
    description: Nodes
    addresses: [10.0.0.1]
    hostnames: [node.example.com]
  admins: Admins
rules:
  - id: r1
    service: SSH
    proto: tcp
    ports: 22
    from: admins
    to: nodes
    direction: inbound
    initiator: from
    required: true
    description: d
    ref: row 1
  - id: r2
    service: ping
    proto: icmp
    icmp_types: [8]
    from: nodes
    to: nodes
exceptions:
  - id: e1
    from: [10.9.9.9]
    to: nodes
    proto: tcp
    ports: 22
    reason: r
    owner: o
    expires: 2030-01-01
"""


def test_docs_hold_the_generated_reference():
    text = (REPO / "docs" / "rules-format.md").read_text(encoding="utf-8")
    assert reference_markdown() in text, "regenerate: python -m portmatrix.policy.schema"


def test_a_file_with_every_declared_key_loads_clean(write_yaml):
    matrix = collect_matrix([str(write_yaml("m.yaml", EVERY_KEY))])
    assert matrix.problems == []
    used = {
        MATRIX: set(MATRIX.names),
        ROLE: {"description", "addresses", "hostnames"},
        RULE: {"id", "service", "proto", "ports", "icmp_types", "from", "to", "direction"}
        | {"initiator", "required", "description", "ref"},
        EXCEPTION: {"id", "from", "to", "proto", "ports", "reason", "owner", "expires"},
    }
    for section, keys in used.items():  # the fixture above really holds every key
        assert keys == set(section.names), section.title


@pytest.mark.parametrize(
    ("snippet", "key"),
    [
        ("name: m\ncolour: red\n", "colour"),
        ("name: m\nroles: {nodes: {colour: red}}\n", "roles.nodes.colour"),
        (
            "name: m\nroles: {a: A}\nrules:\n  - {id: r, service: s, proto: tcp, ports: 1,"
            " from: a, to: a, colour: red}\n",
            "rules.r.colour",
        ),
        (
            "name: m\nexceptions:\n  - {id: e, from: [10.0.0.1], to: [10.0.0.2], proto: tcp,"
            " reason: r, colour: red}\n",
            "exceptions.e.colour",
        ),
    ],
)
def test_an_unknown_key_anywhere_names_the_section_keys(write_yaml, snippet, key):
    matrix = collect_matrix([str(write_yaml("m.yaml", snippet))])
    problem = next(p for p in matrix.problems if p.what == "unknown key")
    assert problem.key == key
    section = next(s for s in SECTIONS if s.expected == problem.hint)
    assert "colour" not in section.names


def test_inventory_keys_come_from_the_table(write_yaml):
    inv = collect_inventory(str(write_yaml("i.yaml", "roles: {}\nhosts: {}\nsites: x\n")))
    assert [(p.key, p.what, p.hint) for p in inv.problems] == [
        ("sites", "unknown key", "expected one of hosts, roles")
    ]
