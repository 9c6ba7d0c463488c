import csv
import io
import json

import pytest

from portmatrix.policy.matrix import Matrix, Role, Rule
from portmatrix.report.matrix_view import (
    COLUMNS,
    FORMATS,
    render_csv,
    render_json,
    render_markdown,
    render_table,
)

RULES = [
    Rule("ssh", "SSH | shell", "tcp", ((22, 22),), "admins", "nodes", ref="row 1"),
    Rule("rpc", "RPC", "tcp", ((80, 80), (20123, 32768)), "nodes", "nodes", initiator="either"),
    Rule("ping", "Ping", "icmp", (), "nodes", "nodes", icmp_types=(0, 8), required=True),
    Rule("icmp-all", "ICMP", "icmpv6", (), "admins", "nodes"),
]
MATRIX = Matrix(
    name="demo",
    roles={"nodes": Role("nodes", "Cluster"), "admins": Role("admins", "Admins")},
    rules=RULES,
    files=["demo.yaml"],
)


def test_every_format_renders_every_rule():
    for render in FORMATS.values():
        out = render(MATRIX, RULES)
        assert out.endswith("\n")
        for rule in RULES:
            assert rule.id in out


def test_every_format_renders_an_empty_selection():
    for render in FORMATS.values():
        out = render(MATRIX, [])
        assert "ssh" not in out


def test_csv_rows():
    rows = list(csv.DictReader(io.StringIO(render_csv(MATRIX, RULES))))
    assert tuple(rows[0]) == COLUMNS
    assert [r["ports"] for r in rows] == ["22", "80, 20123-32768", "types 0, 8", "all"]
    assert rows[0]["service"] == "SSH | shell"
    assert [r["required"] for r in rows] == ["False", "False", "True", "False"]


def test_json_document():
    doc = json.loads(render_json(MATRIX, RULES[:1]))
    assert doc == {
        "name": "demo",
        "files": ["demo.yaml"],
        "roles": {
            "nodes": {"description": "Cluster", "addresses": []},
            "admins": {"description": "Admins", "addresses": []},
        },
        "rules": [
            {
                "id": "ssh",
                "proto": "tcp",
                "ports": "22",
                "from": "admins",
                "to": "nodes",
                "initiator": "from",
                "required": False,
                "service": "SSH | shell",
                "ref": "row 1",
                "description": "",
                "direction": "bidirectional",
            }
        ],
    }


def test_markdown_escapes_pipes():
    lines = render_markdown(MATRIX, RULES[:1]).splitlines()
    assert lines[:2] == ["### demo", ""]
    assert lines[3] == "|" + "---|" * len(COLUMNS)
    assert lines[4].count(" | ") == len(COLUMNS) - 1  # the escaped pipe is no column
    assert "SSH \\| shell" in lines[4]


@pytest.mark.parametrize(
    ("rule", "arrow"), [(RULES[0], "admins → nodes"), (RULES[1], "nodes ↔ nodes")]
)
def test_table_arrows(rule, arrow):
    out = render_table(MATRIX, [rule])
    assert out.startswith("demo: 1 of 4 rules")
    assert arrow in out
