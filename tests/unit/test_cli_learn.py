"""`portmatrix learn` as a person types it: the draft on standard output or in a
file, a summary on stderr, and every mistake one line before anything is read."""

from __future__ import annotations

import pytest
import yaml

from support.paths import CAPTURES

DEMO = CAPTURES / "thoughtspot-demo.pcap"
INVENTORY = CAPTURES / "thoughtspot-demo.inventory.yaml"


def one_line_error(result, *parts: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("portmatrix: error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    for part in parts:
        assert part in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_the_draft_goes_to_standard_output_and_the_summary_to_stderr(run_cli):
    result = run_cli("learn", DEMO, "--inventory", INVENTORY)
    assert result.exit_code == 0, result.stderr
    doc = yaml.safe_load(result.stdout)
    assert doc["name"] == "learned" and len(doc["rules"]) == 28
    assert result.stderr == (
        "portmatrix: drafted: 28 rule(s) (0 required), 2 draft role(s), 5 flow(s) not "
        "learned (listed at the end)\n"
    )
    quiet = run_cli("learn", DEMO, "--inventory", INVENTORY, "--quiet", "--name", "site-a")
    assert quiet.stderr == "" and yaml.safe_load(quiet.stdout)["name"] == "site-a"


def test_a_file_output_is_written_whole(run_cli, tmp_path):
    out = tmp_path / "draft.yaml"
    result = run_cli("learn", DEMO, "--inventory", INVENTORY, "--rules", "thoughtspot", "-o", out)
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr == (
        f"portmatrix: wrote {out}: 4 rule(s) (0 required), 1 draft role(s), 2 flow(s) not "
        "learned (listed at the end)\n"
    )
    assert f"--rules thoughtspot --rules {out} --inventory" in out.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["draft.yaml"]  # no temporary left


@pytest.mark.parametrize(
    ("args", "parts"),
    [
        (("--min-flows", "0"), ("--min-flows", "0")),
        (("--required-share", "1.5"), ("--required-share",)),
        (("--buckets", "65"), ("--buckets",)),
        (("--range-min-ports", "x"), ("--range-min-ports",)),
        (("--name", "My Draft"), ("--name", "'My Draft' is not a matrix name")),
        (("--min-flow", "2"), ("--min-flow",)),
    ],
)
def test_bad_options_are_one_line(run_cli, args, parts):
    one_line_error(run_cli("learn", DEMO, "--inventory", INVENTORY, *args), *parts)


def test_outputs_that_cannot_be_written_are_refused_before_reading(run_cli, tmp_path):
    missing = tmp_path / "nope" / "draft.yaml"
    one_line_error(run_cli("learn", DEMO, "-o", missing), "--output", "does not exist")
    one_line_error(
        run_cli("learn", DEMO, "--inventory", INVENTORY, "-o", INVENTORY),
        "is one of the inputs",
    )
    one_line_error(run_cli("learn", DEMO, "-o", DEMO), "is one of the inputs")


def test_inputs_are_captures_or_zeek_logs_not_both(run_cli):
    result = run_cli("learn", "--inventory", INVENTORY)
    one_line_error(result, "no input: give capture files")
    log = CAPTURES.parent / "tests" / "fixtures" / "zeek" / "violations-small.conn.log"
    one_line_error(run_cli("learn", DEMO, "--zeek", log), "give capture files")


def test_an_inventory_whose_roles_cannot_be_declared_is_refused(run_cli, write_yaml):
    bad = write_yaml("inv.yaml", "roles:\n  nodes: [10.20.0.11]\n  Web Servers: [10.20.0.12]\n")
    one_line_error(
        run_cli("learn", DEMO, "--inventory", bad),
        f"{bad}:3: roles.Web Servers: 'Web Servers' cannot be a role of the draft",
    )


def test_an_inventory_role_the_base_lacks_is_refused(run_cli, write_yaml):
    inv = write_yaml("inv.yaml", "roles:\n  nodes: [10.20.0.11]\n  webs: [10.20.0.12]\n")
    one_line_error(
        run_cli("learn", DEMO, "--inventory", inv, "--rules", "thoughtspot"),
        "roles.webs: role not defined by the matrix",
    )


def test_a_capture_cut_short_drafts_from_what_came_before_and_says_so(run_cli, tmp_path):
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(DEMO.read_bytes()[:15000])  # into record 187 of 268
    result = run_cli("learn", cut, "--inventory", INVENTORY)
    assert result.exit_code == 2
    assert yaml.safe_load(result.stdout)["rules"]  # the draft of the packets before the cut
    summary, error = result.stderr.splitlines()
    assert summary.startswith("portmatrix: drafted: ")
    assert error.startswith(f"portmatrix: error: {cut}: file cut short in the middle of record")
