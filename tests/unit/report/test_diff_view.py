"""`rules diff` in text, Markdown and JSON: every kind of difference, in each."""

from __future__ import annotations

import json

import pytest

from portmatrix.policy.diff import diff
from portmatrix.policy.matrix import load_matrix
from portmatrix.report.diff_view import FORMATS

A = """
name: a
roles:
  nodes: N
  admins: A
  relay: {description: R, addresses: [10.0.0.25]}
rules:
  - {id: ssh, service: SSH, proto: tcp, ports: 22, from: admins, to: nodes}
  - {id: mail, service: SMTP, proto: tcp, ports: [25, 587], from: nodes, to: relay}
  - {id: ping, service: Ping, proto: icmp, from: nodes, to: nodes}
exceptions:
  - {id: e, from: [10.9.9.9], to: nodes, proto: tcp, ports: 22, reason: r, expires: 2027-01-01}
"""

B = """
name: b
roles:
  nodes: N
  admins: A
  relay: {description: R, addresses: [10.0.0.26]}
rules:
  - {id: ssh2, service: SSH, proto: tcp, ports: 22, from: admins, to: nodes, initiator: either}
  - {id: mail, service: SMTP, proto: tcp, ports: 25, from: nodes, to: relay}
  - {id: ping, service: Ping, proto: icmp, icmp_types: [8], from: nodes, to: nodes, required: true}
exceptions:
  - {id: e2, from: [10.9.9.9], to: nodes, proto: tcp, ports: 22, reason: r, expires: 2028-01-01}
"""


@pytest.fixture
def result(write_yaml):
    a = load_matrix([str(write_yaml("a.yaml", A))])
    b = load_matrix([str(write_yaml("b.yaml", B))])
    return diff(a, b)


def test_text_says_each_difference_on_one_line(result):
    lines = FORMATS["text"](result).splitlines()
    assert lines[1:] == [
        "- nodes → nodes icmp: types 0-7, 9-255 (ping)",
        "~ nodes → nodes icmp: types 8 now required",
        "- nodes → relay tcp: 587 (mail)",
        "~ admins ↔ nodes tcp 22: opened admins → nodes, now either",
        "~ role relay changed: 10.0.0.25 → 10.0.0.26",
        "~ exception 10.9.9.9 → nodes tcp: expires 2027-01-01 → 2028-01-01",
        "6 difference(s)",
    ]


def test_json_holds_every_part(result):
    doc = json.loads(FORMATS["json"](result))
    assert doc["differ"] is True
    assert [(p["from"], p["to"], p["proto"], p["removed"]) for p in doc["pairs"]] == [
        ("nodes", "nodes", "icmp", "types 0-7, 9-255"),
        ("nodes", "relay", "tcp", "587"),
    ]
    assert doc["directions"] == [
        {
            "roles": ["admins", "nodes"],
            "proto": "tcp",
            "ports": "22",
            "a": "admins → nodes",
            "b": "either",
            "no_effect": False,
        }
    ]
    assert doc["roles"] == [
        {"role": "relay", "change": "changed", "a": ["10.0.0.25"], "b": ["10.0.0.26"]}
    ]
    assert doc["exceptions"][0]["expires"] == ["2027-01-01", "2028-01-01"]


def test_markdown_tables_and_lines(result):
    text = FORMATS["markdown"](result)
    assert "| nodes | relay | tcp |  | 587 |  |  |" in text
    assert "| admins ↔ nodes | tcp | 22 | admins → nodes | either |" in text
    assert "- ~ role relay changed: 10.0.0.25 → 10.0.0.26" in text


def test_the_formats_are_the_cli_choices():
    from portmatrix.cli import rules_diff

    fmt = next(p for p in rules_diff.params if p.name == "fmt")
    assert tuple(fmt.type.choices) == tuple(FORMATS)
