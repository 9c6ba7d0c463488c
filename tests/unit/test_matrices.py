"""`portmatrix rules show|lint` as commands."""

from __future__ import annotations

import json

import pytest

from portmatrix.errors import MatrixError
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
