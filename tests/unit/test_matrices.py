"""`portmatrix rules show|lint` as commands."""

from __future__ import annotations

import json

import pytest

from portmatrix.errors import ExitCode, MatrixError
from portmatrix.matrices import lint, show


def test_show_narrows_by_role_and_port(capsys):
    assert show(("thoughtspot",), "admins", 22, "json") == 0
    rules = json.loads(capsys.readouterr().out)["rules"]
    assert [r["id"] for r in rules] == ["ssh-from-admins"]


def test_show_refuses_a_misspelt_role(capsys):
    with pytest.raises(MatrixError, match="unknown role 'admin'") as err:
        show(("thoughtspot",), "admin", None, "table")
    assert err.value.hint.startswith("did you mean admins?")


def test_lint_exit_statuses(capsys, write_yaml):
    assert lint(("thoughtspot",), None) == 0
    assert capsys.readouterr().out.startswith("0 problem(s) in thoughtspot (bundled)")
    broken = write_yaml(
        "m.yaml",
        "name: m\nroles: {a: A}\n"
        "rules:\n  - {id: r, service: s, proto: tcp, ports: 1, from: a, to: b}\n",
    )
    assert lint((str(broken),), None) == 2
    captured = capsys.readouterr()
    assert "unknown role 'b'" in captured.out and "cannot be used" in captured.err


def test_show_by_role_or_port_alone(matrix, capsys):
    small = matrix("small")
    assert show((small,), "admins", None, "json") == 0
    ids = [r["id"] for r in json.loads(capsys.readouterr().out)["rules"]]
    assert ids == ["ssh-from-admins", "syslog"]
    assert show((small,), None, 7000, "json") == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)["rules"]] == ["node-rpc"]
    assert show((small,), "users", 22, "csv") == 0
    assert capsys.readouterr().out.splitlines()[1:] == []  # a header, no rule


def test_lint_warnings_exit_1(site, capsys):
    small = site("small")
    code = lint((str(small.matrix), str(small.exceptions)), str(small.inventory))
    out, err = capsys.readouterr()
    assert code == ExitCode.FINDINGS  # old-snmp expired in 2020: a warning
    assert "exceptions.old-snmp.expires: expired on 2020-01-01" in out
    assert out.splitlines()[-1] == (
        f"1 problem(s) in {small.matrix}, {small.exceptions} with {small.inventory}: "
        "6 rules, 3 roles, 2 exceptions"
    )
    assert err == ""


def test_lint_errors_in_the_inventory_exit_2(write_yaml, matrix, capsys):
    inventory = write_yaml("i.yaml", "roles:\n  nodes: [10.0.0.300]\n  admins: [10.0.1.5]\n")
    assert lint((matrix("small"),), str(inventory)) == ExitCode.BAD_INPUT
    out, err = capsys.readouterr()
    assert f"error: {inventory}:2: roles.nodes: '10.0.0.300' is not an address" in out
    assert err == "portmatrix: error: 1 error(s): the files cannot be used as they are\n"


def test_stack_splits_on_commas_unless_the_file_exists(tmp_path):
    from portmatrix.matrices import stack

    assert stack("thoughtspot,site.yaml") == ["thoughtspot", "site.yaml"]
    odd = tmp_path / "a,b.yaml"
    odd.write_text("name: x\n")
    assert stack(str(odd)) == [str(odd)]


def test_diff_prints_and_exits_by_whether_they_differ(capsys, write_yaml):
    from portmatrix.matrices import diff

    assert diff("thoughtspot", "thoughtspot", None, "json") == 0
    assert json.loads(capsys.readouterr().out)["differ"] is False
    site = write_yaml("s.yaml", "roles: {extra: E}\n")
    assert diff("thoughtspot", f"thoughtspot,{site}", None, "text") == 1
    assert "+ role extra added" in capsys.readouterr().out
