"""`portmatrix rules show` and `portmatrix rules lint`, run through the CLI."""

import csv
import io
import json

import click
import pytest

from portmatrix.cli import rules_show
from portmatrix.policy.matrix import load_matrix
from portmatrix.report.matrix_view import FORMATS

MATRIX = """
name: demo
roles:
  nodes: Cluster nodes
  admins: Administrators
rules:
  - id: ssh-from-admins
    service: SSH
    proto: tcp
    ports: 22
    from: admins
    to: nodes
  - id: node-rpc
    service: RPC
    proto: tcp
    ports: "20123-32768"
    from: nodes
    to: nodes
    initiator: either
    required: true
  - id: web-from-any
    service: HTTPS
    proto: tcp
    ports: 443
    from: any
    to: nodes
  - id: ping
    service: Ping
    proto: icmp
    icmp_types: [0, 8]
    from: nodes
    to: nodes
"""

SITE = """
roles:
  backup: Backup hosts
rules:
  - id: backup-pull
    service: SSH
    proto: tcp
    ports: 22
    from: backup
    to: nodes
"""

INVENTORY = """
roles:
  nodes: [10.1.1.11-10.1.1.16]
  admins: [192.168.10.0/28]
"""


@pytest.fixture
def matrix(write_yaml):
    return str(write_yaml("demo.yaml", MATRIX))


def assert_one_line_error(result, start: str) -> None:
    assert result.exit_code == 2
    assert result.stderr.startswith(start), result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr + result.stdout


def shown_ids(run_cli, *args) -> list[str]:
    result = run_cli("rules", "show", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return [r["id"] for r in json.loads(result.stdout)["rules"]]


# --- rules show -------------------------------------------------------------------------


def test_format_choices_are_the_registry():
    (option,) = [p for p in rules_show.params if p.name == "fmt"]
    assert isinstance(option.type, click.Choice)
    assert tuple(option.type.choices) == tuple(FORMATS)


def test_show_table_by_default(run_cli, matrix):
    result = run_cli("rules", "show", matrix)
    assert result.exit_code == 0
    assert result.stderr == ""
    out = result.stdout
    assert out.startswith("demo: 4 of 4 rules")
    for rid in ("ssh-from-admins", "node-rpc", "web-from-any", "ping"):
        assert rid in out
    assert "admins → nodes" in out
    assert "nodes ↔ nodes" in out  # initiator: either
    assert "20123-32768" in out
    assert "types 0, 8" in out
    assert out.endswith("either side may (initiator: either)\n")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_show_every_format(run_cli, matrix, fmt):
    result = run_cli("rules", "show", matrix, "--format", fmt, "--role", "admins")
    assert result.exit_code == 0, result.stderr
    loaded = load_matrix([matrix])
    assert result.stdout == FORMATS[fmt](loaded, [loaded.rule("ssh-from-admins")])
    assert "node-rpc" not in result.stdout


def test_show_json(run_cli, matrix):
    result = run_cli("rules", "show", matrix, "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["name"] == "demo"
    assert doc["files"] == [matrix]
    assert set(doc["roles"]) == {"nodes", "admins"}
    rpc = doc["rules"][1]
    assert rpc == {
        "id": "node-rpc",
        "proto": "tcp",
        "ports": "20123-32768",
        "from": "nodes",
        "to": "nodes",
        "initiator": "either",
        "required": True,
        "service": "RPC",
        "ref": "",
        "description": "",
        "direction": "bidirectional",
    }


def test_show_csv(run_cli, matrix):
    result = run_cli("rules", "show", matrix, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["id"] for r in rows] == ["ssh-from-admins", "node-rpc", "web-from-any", "ping"]
    assert rows[3]["ports"] == "types 0, 8"
    assert rows[1]["required"] == "True"


def test_show_markdown(run_cli, matrix):
    lines = run_cli("rules", "show", matrix, "--format", "markdown").stdout.splitlines()
    assert lines[0] == "### demo"
    assert lines[2].startswith("| id | proto | ports |")
    assert len(lines) == 4 + 4


@pytest.mark.parametrize(
    ("role", "ids"),
    [
        ("admins", ["ssh-from-admins"]),
        ("nodes", ["ssh-from-admins", "node-rpc", "web-from-any", "ping"]),
        ("any", ["web-from-any"]),
    ],
)
def test_show_role_filter(run_cli, matrix, role, ids):
    assert shown_ids(run_cli, matrix, "--role", role) == ids


@pytest.mark.parametrize(
    ("port", "ids"),
    [
        ("22", ["ssh-from-admins"]),
        ("20122", []),
        ("20123", ["node-rpc"]),
        ("32768", ["node-rpc"]),
        ("32769", []),
    ],
)
def test_show_port_filter(run_cli, matrix, port, ids):
    assert shown_ids(run_cli, matrix, "--port", port) == ids


def test_show_role_and_port_together(run_cli, matrix):
    assert shown_ids(run_cli, matrix, "--role", "nodes", "--port", "443") == ["web-from-any"]
    assert shown_ids(run_cli, matrix, "--role", "admins", "--port", "443") == []


def test_show_title_counts_the_filtered_rules(run_cli, matrix):
    assert run_cli("rules", "show", matrix, "--port", "22").stdout.startswith("demo: 1 of 4 rules")


def test_show_layered_files(run_cli, matrix, write_yaml):
    site = str(write_yaml("site.yaml", SITE))
    assert shown_ids(run_cli, matrix, site, "--role", "backup") == ["backup-pull"]
    assert shown_ids(run_cli, matrix, site, "--port", "22") == ["ssh-from-admins", "backup-pull"]


def test_show_unknown_role(run_cli, matrix):
    result = run_cli("rules", "show", matrix, "--role", "workers")
    assert_one_line_error(
        result, "portmatrix: error: --role: unknown role 'workers' — did you mean nodes? roles: "
    )
    assert "admins, nodes" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("port", ["70000", "-1", "ssh"])
def test_show_bad_port_is_a_usage_error(run_cli, matrix, port):
    assert run_cli("rules", "show", matrix, "--port", port).exit_code == 2


def test_show_unknown_format(run_cli, matrix):
    assert run_cli("rules", "show", matrix, "--format", "xml").exit_code == 2


def test_show_needs_a_matrix(run_cli):
    assert run_cli("rules", "show").exit_code == 2


def test_show_malformed_yaml(run_cli, write_yaml):
    path = write_yaml("bad.yaml", "name: demo\nroles:\n  nodes: [a\n  admins: b\n")
    result = run_cli("rules", "show", path)
    assert_one_line_error(result, f"portmatrix: error: {path}:")
    line = result.stderr.split(":")[3]
    assert line.isdigit()
    assert "malformed YAML" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("name: d\nname: e\n", 2, "name: key given twice"),
        ("name: d\nexpires: 2027-02-30\n", 2, "'2027-02-30' cannot be read"),
        (MATRIX.lstrip().replace("ports: 22", "ports: 70000"), 9, "rules.ssh-from-admins.ports"),
        (MATRIX.lstrip().replace("to: nodes", "to: workers", 1), 6, "unknown role 'workers'"),
    ],
)
def test_show_bad_matrix_is_one_line(run_cli, write_yaml, text, where, what):
    path = write_yaml("bad.yaml", text)
    result = run_cli("rules", "show", path)
    assert_one_line_error(result, f"portmatrix: error: {path}:{where}: ")
    assert what in result.stderr


def test_show_missing_file_and_unknown_bundled_name(run_cli, tmp_path):
    result = run_cli("rules", "show", tmp_path / "absent.yaml")
    assert_one_line_error(result, f"portmatrix: error: {tmp_path / 'absent.yaml'}: no such file")
    result = run_cli("rules", "show", "no-such-matrix")
    assert_one_line_error(result, "portmatrix: error: no-such-matrix: no bundled matrix named")


def test_traceback_flag_shows_the_traceback_and_keeps_the_status(run_cli, write_yaml):
    path = write_yaml("bad.yaml", "name: [\n")
    result = run_cli("--traceback", "rules", "show", path)
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "MatrixError" in result.stderr


# --- rules lint -------------------------------------------------------------------------


def test_lint_clean_matrix_exits_0(run_cli, matrix, write_yaml):
    result = run_cli("rules", "lint", matrix)
    assert result.exit_code == 0
    assert result.stdout == f"0 problem(s) in {matrix}: 4 rules, 2 roles, 0 exceptions\n"
    assert result.stderr == ""
    inventory = str(write_yaml("site.yaml", INVENTORY))
    result = run_cli("rules", "lint", matrix, "--inventory", inventory)
    assert result.exit_code == 0
    assert result.stdout.startswith(f"0 problem(s) in {matrix} with {inventory}:")


def test_lint_problems_exit_1(run_cli, write_yaml):
    text = MATRIX + (
        "  - id: ssh-again\n    service: SSH\n    proto: tcp\n    ports: 22\n"
        "    from: any\n    to: nodes\n"
    )
    path = write_yaml("m.yaml", text)
    result = run_cli("rules", "lint", path)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        f"warning: {path}:6: rules.ssh-from-admins: shadowed by rule ssh-again"
    )
    assert lines[1] == f"1 problem(s) in {path}: 5 rules, 2 roles, 0 exceptions"
    assert result.stderr == ""


def test_lint_expired_exception_exits_1(run_cli, write_yaml):
    text = MATRIX + (
        "exceptions:\n  - id: old\n    from: [10.9.9.9]\n    to: nodes\n    proto: tcp\n"
        "    ports: 23\n    reason: r\n    expires: 2001-01-01\n"
    )
    result = run_cli("rules", "lint", write_yaml("m.yaml", text))
    assert result.exit_code == 1
    assert "exceptions.old.expires: expired on 2001-01-01" in result.stdout


def test_lint_inventory_warnings_exit_1(run_cli, matrix, write_yaml):
    inventory = write_yaml("site.yaml", "roles:\n  nodes: [10.1.1.11, db.example.com]\n")
    result = run_cli("rules", "lint", matrix, "--inventory", inventory)
    assert result.exit_code == 1
    out = result.stdout
    assert f"warning: {inventory}:1: roles.admins: the matrix uses this role" in out
    assert "rules.ssh-from-admins: can never match: no address holds role admins" in out
    assert f"warning: {inventory}:2: roles.nodes: no address known for db.example.com" in out


def test_lint_errors_exit_2(run_cli, write_yaml):
    text = MATRIX.lstrip().replace('"20123-32768"', '"32768-20123"')
    path = write_yaml("m.yaml", text + "  - id: ping\n    service: x\n    proto: udp\n")
    result = run_cli("rules", "lint", path)
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"error: {path}:15: rules.node-rpc.ports: range '32768-20123' ends before it starts"
        " — ports are numbers 0-65535, lists of them, or ranges low-high"
    )
    assert all(line.startswith(("error: ", "warning: ")) for line in lines)
    assert any("rules.ping.ports: missing" in line for line in lines)
    assert result.stderr.startswith("portmatrix: error: ")
    assert result.stderr.count("\n") == 1


def test_lint_inventory_errors_exit_2(run_cli, matrix, write_yaml):
    inventory = write_yaml("site.yaml", "roles:\n  nodes: [10.1.1.300]\n  workers: [10.0.0.1]\n")
    result = run_cli("rules", "lint", matrix, "--inventory", inventory)
    assert result.exit_code == 2
    assert f"error: {inventory}:2: roles.nodes: '10.1.1.300' is not an address" in result.stdout
    assert f"error: {inventory}:3: roles.workers: role not defined by the matrix" in result.stdout


def test_lint_layered_redefined_role_exits_2(run_cli, matrix, write_yaml):
    site = write_yaml("site.yaml", "roles:\n  nodes: again\n")
    result = run_cli("rules", "lint", matrix, site)
    assert result.exit_code == 2
    assert f"error: {site}:2: roles.nodes: role already defined at {matrix}:3" in result.stdout


@pytest.mark.parametrize(
    "text",
    ["name: demo\nroles:\n  - [\n", "name: demo\nname: again\n", "name: x\nbad: !!int abc\n"],
)
def test_lint_unreadable_matrix_is_one_line(run_cli, write_yaml, text):
    path = write_yaml("m.yaml", text)
    result = run_cli("rules", "lint", path)
    assert_one_line_error(result, f"portmatrix: error: {path}:")
    assert result.stdout == ""


def test_lint_missing_inventory(run_cli, matrix, tmp_path):
    result = run_cli("rules", "lint", matrix, "--inventory", tmp_path / "absent.yaml")
    assert_one_line_error(result, "portmatrix: error: ")
    assert "no such file" in result.stderr


def test_diff_of_a_matrix_with_itself_exits_0(run_cli, matrix):
    result = run_cli("rules", "diff", matrix, matrix)
    assert result.exit_code == 0
    assert result.stdout.endswith("no difference: A and B allow the same\n")


def test_diff_lists_the_edits_and_exits_1(run_cli, matrix, write_yaml):
    edited = write_yaml(
        "edited.yaml",
        MATRIX.replace("ports: 22", "ports: [22, 2222]").replace(
            "    required: true\n", "    required: false\n"
        ),
    )
    result = run_cli("rules", "diff", matrix, edited)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[1:] == [
        "+ admins → nodes tcp: 2222 (ssh-from-admins)",
        "~ nodes → nodes tcp: 20123-32768 no longer required",
        "2 difference(s)",
    ]
    as_json = json.loads(run_cli("rules", "diff", matrix, edited, "--format", "json").stdout)
    assert as_json["differ"] is True and as_json["pairs"][0]["added"] == "2222"
    markdown = run_cli("rules", "diff", matrix, edited, "--format", "markdown").stdout
    assert "| admins | nodes | tcp | 2222 |  |  |  |" in markdown


def test_diff_takes_layered_stacks(run_cli, matrix, write_yaml):
    site = write_yaml("site.yaml", SITE)
    result = run_cli("rules", "diff", matrix, f"{matrix},{site}")
    assert result.exit_code == 1
    assert "+ backup → nodes tcp: 22 (backup-pull)" in result.stdout
    assert "+ role backup added" in result.stdout


def test_diff_with_an_inventory_marks_roles_without_addresses(run_cli, matrix, write_yaml):
    site = write_yaml("site.yaml", SITE)
    inventory = write_yaml("inv.yaml", INVENTORY)
    result = run_cli("rules", "diff", matrix, f"{matrix},{site}", "--inventory", inventory)
    assert "+ backup → nodes tcp (no effect: a role holds no address): 22" in result.stdout


def test_diff_mistakes_are_one_line(run_cli, matrix):
    assert_one_line_error(run_cli("rules", "diff", matrix, "nosuch"), "portmatrix: error: nosuch")
    assert_one_line_error(
        run_cli("rules", "diff", matrix, matrix, "--format", "yml"), "portmatrix: error: --format"
    )
