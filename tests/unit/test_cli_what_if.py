"""`portmatrix check --what-if`: the section in every report asked for, --fail-on
applying to it, and its mistakes one line before the capture is read."""

from __future__ import annotations

import json

from support.paths import CAPTURES

DEMO = CAPTURES / "thoughtspot-demo.pcap"
INVENTORY = CAPTURES / "thoughtspot-demo.inventory.yaml"


def draft_of_demo(run_cli, tmp_path):
    draft = tmp_path / "draft.yaml"
    result = run_cli("learn", DEMO, "--inventory", INVENTORY, "-o", draft, "--quiet")
    assert result.exit_code == 0, result.stderr
    return draft


def test_fail_on_applies_to_what_would_change(run_cli, tmp_path):
    draft = draft_of_demo(run_cli, tmp_path)
    base = ("check", DEMO, "--rules", draft, "--inventory", INVENTORY, "--fail-on", "warning")
    # against its own draft the demo has info findings only
    assert run_cli(*base, "-o", tmp_path / "r.json").exit_code == 0
    # enforcing the vendor matrix instead would break what the draft allows
    out = tmp_path / "w.json"
    result = run_cli(*base, "--what-if", "thoughtspot", "-o", out, "-o", tmp_path / "w.html")
    assert result.exit_code == 1, result.stderr
    part = json.loads(out.read_text())["what_if"]
    broken = {(c["proto"], c["port"]) for c in part["changes"] if c["change"] == "would-break"}
    assert broken == {("tcp", 22), ("tcp", 5432), ("tcp", 8443), ("tcp", 6667)}
    assert "id='what-if'" in (tmp_path / "w.html").read_text()
    never = run_cli(*base[:-1], "never", "--what-if", "thoughtspot", "-o", tmp_path / "n.json")
    assert never.exit_code == 0


def test_what_if_mistakes_are_one_line(run_cli, tmp_path, write_yaml):
    missing = run_cli("check", DEMO, "--rules", "thoughtspot", "--what-if", tmp_path / "nope.yaml")
    assert missing.exit_code == 2 and missing.stderr.count("\n") == 1
    assert "nope.yaml: no such file" in missing.stderr
    lacking = write_yaml("lacking.yaml", "name: l\nroles: {nodes: N}\n")
    result = run_cli(
        "check", DEMO, "--rules", "thoughtspot", "--inventory", INVENTORY, "--what-if", lacking
    )
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "role not defined by the matrix" in result.stderr
    assert "the --what-if matrix must define it" in result.stderr
