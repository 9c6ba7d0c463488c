"""`portmatrix check`, run through the CLI: exit statuses, --fail-on, --baseline,
--flows, one-line errors for bad input, every --format on the demo capture."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import click
import pytest
from scapy.layers.inet import UDP

from portmatrix.cli import check_cmd
from portmatrix.report import CHECK_FORMATS
from portmatrix.report.flow_rows import COLUMNS
from portmatrix.testing.captures import cut, ether, frames, ip, tcp_session, write_pcap
from support.packets import refused
from support.paths import DEMO, DEMO_INVENTORY
from support.site import ADMIN, BACKUP, N1, N2, OUT1, OUT2, USER


def healthy():
    """Both required rules of the small site established."""
    return tcp_session(N1, N2, 40000, 7000) + [
        ip(N1, N2) / UDP(sport=40001, dport=7946) / b"ping",
        ip(N2, N1) / UDP(sport=7946, dport=40001) / b"pong",
    ]


@pytest.fixture
def small(site):
    """The small site's files (support/site.py)."""
    return site()


@pytest.fixture
def check(run_cli, small, tmp_path):
    """`check(packets, *options)`: write the packets to a capture and run `check`
    on it with the small site's matrix and inventory."""

    def run(packets, *options, name="c.pcap"):
        path = write_pcap(tmp_path / name, [ether(p) for p in packets])
        args = ["check", path, "--rules", small.matrix, "--inventory", small.inventory]
        return run_cli(*args, *options)

    return run


def assert_one_line_error(result, file):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"portmatrix: error: {file}:"), lines[0]
    assert result.stdout == ""


# Exit status ---------------------------------------------------------------------


def test_clean_capture_exits_0(check):
    result = check(healthy())
    assert result.exit_code == 0, result.stdout
    assert "0 errors, 0 warnings, 0 info" in result.stdout


def test_warnings_only(check):
    packets = healthy() + refused(ADMIN, N1, 40002, 22)
    assert check(packets).exit_code == 0  # default --fail-on error
    assert check(packets, "--fail-on", "error").exit_code == 0
    assert check(packets, "--fail-on", "warning").exit_code == 1
    assert check(packets, "--fail-on", "never").exit_code == 0


def test_errors(check):
    packets = healthy() + tcp_session(USER, N1, 40002, 8443)
    result = check(packets)
    assert result.exit_code == 1
    assert "ERRORS (1)" in result.stdout
    assert check(packets, "--fail-on", "warning").exit_code == 1
    assert check(packets, "--fail-on", "never").exit_code == 0
    assert check(packets, "--fail-on", "sometimes").exit_code == 2  # click usage error


def test_info_only_is_clean_even_with_fail_on_warning(check):
    packets = healthy() + refused(USER, N1, 40002, 8443)
    result = check(packets, "--fail-on", "warning")
    assert result.exit_code == 0
    assert "INFOS (1)" in result.stdout


# Baseline --------------------------------------------------------------------------


def test_baseline_shows_only_new_findings(check, tmp_path):
    old = tmp_path / "old.json"
    first = check(healthy() + tcp_session(USER, N1, 40002, 8443), "--format", "json", "-o", old)
    assert first.exit_code == 1 and first.stdout == ""
    known = json.loads(old.read_text(encoding="utf-8"))["findings"]
    assert len(known) == 1

    same = check(healthy() + tcp_session(USER, N1, 50000, 8443), "--baseline", old, name="d.pcap")
    assert same.exit_code == 0
    assert "1 known (baseline)" in same.stdout
    assert "ERRORS" not in same.stdout

    packets = healthy() + tcp_session(USER, N1, 50000, 8443) + tcp_session(N1, ADMIN, 50001, 22)
    new = check(packets, "--baseline", old, "--format", "json", name="e.pcap")
    assert new.exit_code == 1
    doc = json.loads(new.stdout)
    assert [f["verdict"] for f in doc["findings"]] == ["wrong-direction"]
    assert doc["summary"]["known_findings"] == 1
    assert doc["summary"]["findings"] == {"error": 1, "warning": 0, "info": 0}


@pytest.mark.parametrize("content", ["{not json", '{"findings": "none"}', ""])
def test_malformed_baseline_is_one_line(check, tmp_path, content):
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    assert_one_line_error(check(healthy(), "--baseline", bad), bad)


# Flow export -----------------------------------------------------------------------

MIXED = [
    *tcp_session(USER, N1, 40000, 443),  # allowed
    *tcp_session(N1, ADMIN, 40001, 22),  # wrong-direction
    *tcp_session(USER, N2, 40002, 22),  # unexpected-source
    *tcp_session(USER, N1, 40003, 8443),  # unexpected-port
    *tcp_session(OUT1, OUT2, 40004, 80),  # out-of-scope
    *tcp_session(BACKUP, N2, 40005, 22),  # allowed by the exception backup-ssh
]
MIXED_VERDICTS = {
    (USER, 443): ("allowed", "https-from-users"),
    (N1, 22): ("wrong-direction", "ssh-from-admins"),
    (USER, 22): ("unexpected-source", ""),
    (USER, 8443): ("unexpected-port", ""),
    (OUT1, 80): ("out-of-scope", ""),
    (BACKUP, 22): ("allowed", "exception:backup-ssh"),
}


def flow_rows(path: Path) -> list[dict]:
    if path.suffix == ".csv":
        return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))["flows"]
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


@pytest.mark.parametrize("suffix", [".csv", ".json", ".parquet"])
def test_flows_export_has_every_flow_with_verdict_and_rule(run_cli, small, tmp_path, suffix):
    capture = write_pcap(tmp_path / "mixed.pcap", [ether(p) for p in MIXED])
    out = tmp_path / f"flows{suffix}"
    result = run_cli(
        "check",
        capture,
        "--rules",
        small.matrix,
        "--rules",
        small.exceptions,
        "--inventory",
        small.inventory,
        "--flows",
        out,
    )
    assert result.exit_code == 1, result.stderr
    rows = flow_rows(out)
    assert len(rows) == len(MIXED_VERDICTS)
    if suffix == ".json":  # JSON objects have sorted keys
        assert sorted(rows[0]) == sorted([*COLUMNS, "verdict", "rule", "app", "app_details"])
    else:
        assert list(rows[0]) == [*COLUMNS, "verdict", "rule", "app", "app_details"]
    got = {(r["initiator"], int(r["responder_port"])): (r["verdict"], r["rule"]) for r in rows}
    assert got == MIXED_VERDICTS


def test_parquet_keeps_numbers_as_numbers(run_cli, small, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    capture = write_pcap(tmp_path / "c.pcap", [ether(p) for p in healthy()])
    out = tmp_path / "flows.parquet"
    run_cli(
        "check", capture, "--rules", small.matrix, "--inventory", small.inventory, "--flows", out
    )
    schema = pq.read_schema(out)
    assert pa.types.is_integer(schema.field("packets_fwd").type)
    assert pa.types.is_integer(schema.field("responder_port").type)
    assert pa.types.is_string(schema.field("verdict").type)


@pytest.mark.parametrize("name", ["flows.txt", "flows", "flows.csv.gz"])
def test_flows_export_needs_a_known_suffix(check, tmp_path, name):
    out = tmp_path / name
    result = check(healthy(), "--flows", out)
    assert_one_line_error(result, out)
    assert ".csv, .json, .parquet" in result.stderr
    assert not out.exists()


# Bad input -------------------------------------------------------------------------


def test_missing_capture(run_cli, small, tmp_path):
    missing = tmp_path / "missing.pcap"
    result = run_cli("check", missing, "--rules", small.matrix, "--inventory", small.inventory)
    assert_one_line_error(result, missing)
    assert "no such file" in result.stderr


def test_not_a_capture(run_cli, small, tmp_path):
    bad = tmp_path / "notes.pcap"
    bad.write_text("these are notes, not packets\n", encoding="utf-8")
    result = run_cli("check", bad, "--rules", small.matrix, "--inventory", small.inventory)
    assert_one_line_error(result, bad)
    assert "byte 0" in result.stderr and "not a pcap or pcapng capture" in result.stderr


def test_malformed_inventory_yaml(run_cli, small, write_yaml):
    inventory = write_yaml("broken.yaml", "roles:\n  nodes: [10.0.0.1\n")
    result = run_cli("check", DEMO, "--rules", small.matrix, "--inventory", inventory)
    assert_one_line_error(result, inventory)
    assert "malformed YAML" in result.stderr


def test_inventory_role_the_matrix_does_not_define(run_cli, small, write_yaml):
    inventory = write_yaml("inv.yaml", "roles:\n  nodes: [10.0.0.1]\n  dbas: [10.0.0.9]\n")
    result = run_cli("check", DEMO, "--rules", small.matrix, "--inventory", inventory)
    assert_one_line_error(result, inventory)
    assert f"{inventory}:3: roles.dbas: role not defined by the matrix" in result.stderr
    assert "use one of: admins, nodes, users" in result.stderr


def test_unknown_bundled_matrix(run_cli):
    result = run_cli("check", DEMO, "--rules", "thoughtspoot", "--inventory", DEMO_INVENTORY)
    assert_one_line_error(result, "thoughtspoot")
    assert "no bundled matrix named 'thoughtspoot'" in result.stderr
    assert "bundled matrices: thoughtspot" in result.stderr


def test_traceback_flag_reraises(small, tmp_path):
    from click.testing import CliRunner

    from portmatrix.cli import main

    missing = tmp_path / "missing.pcap"
    args = ["--traceback", "check", str(missing), "--rules", str(small.matrix)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2  # the traceback is shown, the status stays
    assert "CaptureError" in result.stderr and "Traceback" in result.stderr


def test_truncated_capture_is_analyzed_and_says_so(run_cli, small, tmp_path):
    packets = healthy() + tcp_session(USER, N1, 40002, 8443)
    capture = write_pcap(tmp_path / "cut.pcap", [ether(p) for p in packets])
    cut(capture, capture.stat().st_size - 10)  # into the last record (frame 18)
    args = ["check", capture, "--rules", small.matrix, "--inventory", small.inventory]
    text = run_cli(*args)
    # The flows before the cut are still checked and reported; the status and one
    # line say the input was damaged (a CI gate must not take it for a clean read).
    assert text.exit_code == 2
    assert "unexpected-port" in text.stdout
    (error,) = text.stderr.splitlines()
    assert error.startswith(f"portmatrix: error: {capture}: file cut short") and " — " in error
    notice = "".join(text.stdout.split())  # the text report wraps lines (and long paths)
    assert f"notice:{capture}:filecutshortinthemiddleofrecord18" in notice
    doc = json.loads(run_cli(*args, "--format", "json").stdout)
    assert doc["summary"]["packets"] == 17
    assert doc["inputs"]["captures"][0]["truncated"]
    assert any("record 18" in n and "analyzed up to there" in n for n in doc["notices"])


# Formats -------------------------------------------------------------------------


def test_format_choices_are_the_registry():
    (option,) = [p for p in check_cmd.params if p.name == "fmt"]
    assert isinstance(option.type, click.Choice)
    assert sorted(option.type.choices) == sorted(CHECK_FORMATS)


@pytest.mark.parametrize("fmt", sorted(CHECK_FORMATS))
def test_every_format_renders_the_demo(run_cli, tmp_path, fmt):
    args = ["check", DEMO, "--rules", "thoughtspot", "--inventory", DEMO_INVENTORY]
    result = run_cli(*args, "--format", fmt)
    assert result.exit_code == 1, result.stderr
    assert result.stderr == ""
    text = result.stdout
    if fmt == "markdown":  # 7 errors, 2 of them with the flow finding they rest on
        assert text.count("| error | ") == 9 and text.count("| info | ") == 2
    elif fmt == "suggestions":  # rules and exceptions, each naming its finding
        assert "PM-602baf9d52" in text and "rules:" in text and "exceptions:" in text
    else:
        ids = {"PM-602baf9d52", "PM-58d77a94bd", "PM-0752bf6ddc"}
        assert all(i in text for i in ids), fmt
    if fmt == "json":
        assert json.loads(text)["summary"]["flows"] == 40
    elif fmt == "jsonl":
        assert len([json.loads(line) for line in text.splitlines()]) == 12
    elif fmt == "csv":
        assert len(list(csv.DictReader(io.StringIO(text)))) == 12
    out = tmp_path / f"report.{fmt}"
    written = run_cli(*args, "--format", fmt, "--output", out)
    assert written.exit_code == 1 and written.stdout == ""
    created = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")  # when it was made
    assert created.sub("", out.read_text(encoding="utf-8")) == created.sub("", text)


def test_unwritable_output(run_cli, tmp_path):
    out = tmp_path / "no" / "such" / "dir" / "report.json"
    args = ["check", DEMO, "--rules", "thoughtspot", "--inventory", DEMO_INVENTORY]
    assert_one_line_error(run_cli(*args, "--format", "json", "-o", out), out)


# Reading options -----------------------------------------------------------------


def test_reading_options(run_cli, small, tmp_path):
    # A rolling capture in three files; the node-rpc connection spans the first two.
    packets = frames([ether(p) for p in healthy() + tcp_session(USER, N1, 40002, 8443)])
    parts = [
        write_pcap(tmp_path / f"part{k}.pcap", packets[start : start + 6])
        for k, start in enumerate(range(0, len(packets), 6))
    ]
    assert len(parts) == 3
    base = ["check", *parts, "--rules", small.matrix, "--inventory", small.inventory]
    one = run_cli(*base, "--format", "json", "--jobs", "1")
    two = run_cli(*base, "--format", "json", "-j", "2", "--quiet")
    assert one.exit_code == two.exit_code == 1
    # The same report, but for when it was made (the runs may straddle a second).
    docs = [json.loads(r.stdout) for r in (one, two)]
    for doc in docs:
        doc["report"].pop("created")
    assert docs[0] == docs[1]
    assert run_cli(*base, "--jobs", "0").exit_code == 2
    assert run_cli(*base, "--jobs", "many").exit_code == 2


def test_cli_verdict_choices_are_the_verdicts():
    """The CLI keeps its own copy (importing the matrix code would slow --help)."""
    from portmatrix import cli
    from portmatrix.policy.lookup import VERDICTS

    assert cli._VERDICTS == VERDICTS


def test_findings_say_what_runs_on_the_port_unless_no_app(check, tmp_path):
    from support import apps

    packets = apps.conversation(USER, N1, 40000, 2222, apps.BY_LABEL["ssh"].messages)
    labelled = check(packets, "--format", "json")
    (finding,) = [f for f in json.loads(labelled.stdout)["findings"] if f["port"] == 2222]
    assert finding["apps"] == {"ssh": 1}
    assert finding["app_details"] == ["ssh server=OpenSSH_9.2p1"]
    text = check(packets).stdout
    assert "application: ssh 1 — ssh server=OpenSSH_9.2p1" in text
    flows = tmp_path / "flows.csv"
    check(packets, "--flows", flows, "-q")
    rows = [r for r in csv.DictReader(flows.open()) if r["responder_port"] == "2222"]
    assert [(r["app"], r["app_details"]) for r in rows] == [("ssh", "server=OpenSSH_9.2p1")]
    plain = check(packets, "--format", "json", "--no-app")
    assert all(f["apps"] == {} for f in json.loads(plain.stdout)["findings"])
    assert "application:" not in check(packets, "--no-app").stdout
