"""`portmatrix rules show|lint` as module calls: what goes to standard output,
what to standard error, and the exit status each returns. (Through the CLI,
with every format and error: test_cli_rules.py.)"""

from __future__ import annotations

import json

import pytest

from portmatrix.errors import ExitCode, MatrixError
from portmatrix.matrices import lint, show


def test_show_narrows_by_role_and_port(matrix, capsys):
    small = matrix("small")
    assert show((small,), "admins", None, "json") == 0
    ids = [r["id"] for r in json.loads(capsys.readouterr().out)["rules"]]
    assert ids == ["ssh-from-admins", "syslog"]
    assert show((small,), None, 7000, "json") == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)["rules"]] == ["node-rpc"]
    assert show((small,), "users", 22, "csv") == 0
    assert capsys.readouterr().out.splitlines()[1:] == []  # a header, no rule


def test_show_an_unknown_role_says_which_there_are(matrix, capsys):
    with pytest.raises(MatrixError, match="unknown role 'admin'") as err:
        show((matrix("small"),), "admin", None, "table")
    assert err.value.where == "--role" and "admins" in err.value.hint
    assert capsys.readouterr().out == ""


def test_lint_warnings_exit_1_a_clean_matrix_0(site, capsys):
    small = site("small")
    code = lint((str(small.matrix), str(small.exceptions)), str(small.inventory))
    out, err = capsys.readouterr()
    # old-snmp expired in 2020: a warning, exit 1.
    assert code == ExitCode.FINDINGS
    assert "exceptions.old-snmp.expires: expired on 2020-01-01" in out
    assert out.splitlines()[-1] == (
        f"1 problem(s) in {small.matrix}, {small.exceptions} with {small.inventory}: "
        "6 rules, 3 roles, 2 exceptions"
    )
    assert err == ""
    assert lint((str(small.matrix),), None) == ExitCode.OK
    assert capsys.readouterr().out.startswith("0 problem(s) in ")


def test_lint_errors_are_listed_and_exit_2(write_yaml, matrix, capsys):
    inventory = write_yaml("i.yaml", "roles:\n  nodes: [10.0.0.300]\n  admins: [10.0.1.5]\n")
    assert lint((matrix("small"),), str(inventory)) == ExitCode.BAD_INPUT
    out, err = capsys.readouterr()
    assert f"error: {inventory}:2: roles.nodes: '10.0.0.300' is not an address" in out
    assert err == ("portmatrix: error: 1 error(s): the files cannot be used as they are\n")
