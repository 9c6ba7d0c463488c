"""What a person gets wrong, and what they are told: one line, the place and the
fix, exit 2 — before anything is read — and never a silent clean pass."""

from __future__ import annotations

import gc
import json
import threading
import weakref

import pytest
from scapy.layers.inet import TCP

from portmatrix.testing.captures import ether, ip, tcp_session, write_pcap
from support.paths import CAPTURES
from support.site import N1, N2, write_site

DEMO = str(CAPTURES / "thoughtspot-demo.pcap")
INV = str(CAPTURES / "thoughtspot-demo.inventory.yaml")
CHECK = ("check", DEMO, "--rules", "thoughtspot", "--inventory", INV)


def one_line(result, *expect: str) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("portmatrix: error: "), lines[0]
    for text in expect:
        assert text in lines[0], lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
    return lines[0]


# No silent pass --------------------------------------------------------------------


def test_a_misspelt_role_is_refused_with_the_closest_names(run_cli):
    line = one_line(run_cli(*CHECK, "--role", "admin"), "--role", "unknown role 'admin'")
    assert "did you mean admins?" in line


def test_a_misspelt_verdict_is_refused_with_the_closest(run_cli):
    one_line(run_cli(*CHECK, "--verdict", "wrong-directoin"), "--verdict", "wrong-direction?")


def test_a_window_after_the_capture_says_so_and_judges_no_coverage(run_cli):
    result = run_cli(*CHECK, "--since", "2030-01-01T00:00:00Z", "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["summary"]["flows"] == 0
    assert any("holds none of the traffic" in n for n in doc["notices"])
    assert not [f for f in doc["findings"] if f["kind"] == "coverage"]  # no missing-required
    assert result.exit_code == 0


def test_no_inventory_evaluates_no_required_rule(run_cli):
    doc = json.loads(run_cli("check", DEMO, "--rules", "thoughtspot", "--format", "json").stdout)
    statuses = {c["status"] for c in doc["coverage"] if c["required"]}
    assert statuses == {"not-evaluated"}
    notice = next(n for n in doc["notices"] if "roles with no address" in n)
    assert "required rules not evaluated" in notice and "give --inventory" in notice


def test_an_empty_capture_says_it_is_empty(run_cli, tmp_path):
    empty = write_pcap(tmp_path / "empty.pcap", [])
    doc = json.loads(run_cli("check", empty, "--rules", "thoughtspot", "--format", "json").stdout)
    assert any(n.endswith("empty: it holds no packets") for n in doc["notices"])


# Checked before reading --------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "where"),
    [
        ("--since", "garbage", "--since"),
        ("--until", "tomorrow-ish", "--until"),
        ("--host", "10.0.0.300", "--host"),
        ("--flows", "flows.xlsx", "--flows"),
        ("-o", "report.docx", "--output"),
    ],
)
def test_options_are_checked_before_the_capture_is_read(run_cli, tmp_path, option, value, where):
    # The capture does not exist: an error about it would mean it was opened first.
    missing = tmp_path / "never-read.pcap"
    one_line(run_cli("check", missing, "--rules", "thoughtspot", option, value), where)


def test_flows_checks_its_host_before_reading(run_cli, tmp_path):
    one_line(run_cli("flows", tmp_path / "never-read.pcap", "--host", "nodes"), "--host")


# Times as people write them ----------------------------------------------------------


def test_epoch_seconds_and_compound_offsets(run_cli):
    epoch = 1709287200 + 5  # 10:00:05Z, the demo runs from 10:00:00 to 10:00:11.75
    by_epoch = json.loads(run_cli(*CHECK, "--since", str(epoch), "--format", "json").stdout)
    by_offset = json.loads(run_cli(*CHECK, "--since", "+0h0m5s", "--format", "json").stdout)
    assert 0 < by_epoch["summary"]["flows"] == by_offset["summary"]["flows"] < 40


def test_durations_take_compound_units(run_cli):
    one_line(run_cli("watch", "-i", "lo", "--rules", "thoughtspot", "--duration", "1h3"), "1h3")


# Exit statuses and the one-line form ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("check", DEMO, "--rule", "thoughtspot"), "No such option '--rule'"),
        (("check", DEMO), "Missing option '--rules'"),
        (("check", DEMO, "--rules", "thoughtspot", "--format", "xml"), "--format"),
        (("chek",), "No such command 'chek'"),
        (("check", "--rules", "thoughtspot"), "give capture files"),
    ],
)
def test_usage_errors_are_one_line_too(run_cli, args, expect):
    one_line(run_cli(*args), expect)


def test_an_internal_error_is_exit_3_with_what_to_do(run_cli, monkeypatch):
    import portmatrix.check

    def broken(*_):
        raise KeyError("oops")

    monkeypatch.setattr(portmatrix.check, "run_command", broken)
    result = run_cli(*CHECK)
    assert result.exit_code == 3
    assert result.stderr.startswith("portmatrix: error: internal error: KeyError")
    assert "rerun with --traceback" in result.stderr
    shown = run_cli("--traceback", *CHECK)
    assert shown.exit_code == 3  # the traceback does not change the exit status
    assert (
        "Traceback (most recent call last)" in shown.stderr and "KeyError: 'oops'" in shown.stderr
    )


def test_exit_statuses_are_in_the_help(run_cli):
    for args in ((), ("check",), ("watch",), ("flows",), ("evidence",)):
        text = " ".join(run_cli(*args, "--help").stdout.split())
        assert "3 internal error, 130 interrupted" in text


# Clear mix-ups ---------------------------------------------------------------------------


def test_a_capture_given_as_the_inventory(run_cli):
    one_line(
        run_cli("check", DEMO, "--rules", "thoughtspot", "--inventory", DEMO),
        "this is a pcap file, not YAML",
    )


def test_matrix_and_inventory_swapped(run_cli, tmp_path):
    site = write_site(tmp_path)
    line = one_line(
        run_cli("check", DEMO, "--rules", site.inventory, "--inventory", site.matrix),
        "looks like an inventory",
    )
    assert "--inventory" in line
    one_line(
        run_cli("check", DEMO, "--rules", "thoughtspot", "--inventory", site.matrix),
        "looks like a matrix",
    )


# Outputs that tell -------------------------------------------------------------------------


def test_several_reports_from_one_read(run_cli, tmp_path):
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    result = run_cli(*CHECK, "-o", html, "-o", js, "-o", "-")
    assert result.exit_code == 1
    assert html.read_text().startswith("<!DOCTYPE html>")
    assert json.loads(js.read_text())["summary"]["flows"] == 40
    assert "Required services" in result.stdout  # - : the text report
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"portmatrix: wrote {html} (html), {js} (json): 40 flows, 7 errors")
    quiet = run_cli(*CHECK, "-q", "-o", js)
    assert quiet.stderr == "" and quiet.stdout == ""


def test_an_output_that_is_an_input_is_refused(run_cli, tmp_path):
    capture = write_pcap(tmp_path / "c.pcap", [ether(p) for p in tcp_session(N1, N2, 1, 7000)])
    before = capture.read_bytes()
    one_line(
        run_cli(
            "check",
            capture,
            "--rules",
            "thoughtspot",
            "-o",
            tmp_path / "." / "c.pcap",
            "--format",
            "json",
        ),
        "is one of the inputs",
    )
    assert capture.read_bytes() == before


def test_an_output_given_twice_or_with_an_unknown_extension(run_cli, tmp_path):
    one_line(run_cli(*CHECK, "-o", tmp_path / "a.json", "-o", tmp_path / "a.json"), "given twice")
    one_line(run_cli(*CHECK, "-o", tmp_path / "a.out", "-o", "-"), "cannot tell the report format")
    single = run_cli(*CHECK, "-o", tmp_path / "a.out", "--format", "json")
    assert json.loads((tmp_path / "a.out").read_text())["summary"]["flows"] == 40
    assert single.exit_code == 1


# Resources owned ---------------------------------------------------------------------------


def test_rejected_inputs_leave_no_thread_or_file_behind(run_cli, tmp_path):
    import os

    bad = tmp_path / "notes.pcap"
    bad.write_text("not a capture at all\n")
    threads, fds = threading.active_count(), len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        run_cli("flows", bad)
    assert threading.active_count() == threads
    assert len(os.listdir("/proc/self/fd")) == fds


def test_yaml_loading_keeps_nothing_between_files(write_yaml, monkeypatch):
    from portmatrix.policy import yamlfile

    made = []

    class Counting(yamlfile.SafeConstructor):
        def __init__(self):
            super().__init__()
            made.append(weakref.ref(self))

    monkeypatch.setattr(yamlfile, "SafeConstructor", Counting)
    path = write_yaml("m.yaml", "a: 1\nb: [2024-01-01, x]\n")
    for _ in range(3):
        yamlfile.load_yaml(path)
    gc.collect()
    assert len(made) == 3 and all(ref() is None for ref in made)


def test_evidence_says_when_a_choice_selects_nothing(run_cli, tmp_path):
    out = tmp_path / "ev.pcapng"
    coverage_id = next(
        f["id"]
        for f in json.loads(run_cli(*CHECK, "--format", "json").stdout)["findings"]
        if f["verdict"] == "missing-required"
    )
    base = ("evidence", DEMO, "--rules", "thoughtspot", "--inventory", INV, "-o", out)
    one_line(run_cli(*base, "--finding", coverage_id), "has no flows of its own")
    one_line(
        run_cli("evidence", DEMO, "-o", out, "--flow", "tcp 10.9.9.9:1 -> 10.9.9.8:2"),
        "--flow",
        "no flow of the captures has these ends",
    )
    assert not out.exists()
    syn = [ether(ip(N1, N2) / TCP(sport=1, dport=7000, flags="S"))]
    capture = write_pcap(tmp_path / "one.pcap", syn)
    one_line(
        run_cli(
            "evidence", capture, "--rules", "thoughtspot", "--verdict", "wrong-direction", "-o", out
        ),
        "--verdict",
        "no flow has this verdict",
    )


def test_a_choice_in_capitals_is_the_choice_and_no_input_is_said(tmp_path):
    from click.testing import CliRunner

    from portmatrix.cli import main

    log = tmp_path / "a.log"
    log.write_text(
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
        "bytes start end action log-status\n"
        "2 1 eni-1 10.0.0.1 10.0.0.2 40000 443 6 3 300 1700000000 1700000060 ACCEPT OK\n"
    )
    run = CliRunner().invoke(main, ["flows", "--flowlog", str(log), "--flowlog-format", "AWS"])
    assert run.exit_code == 0, run.output
    assert "10.0.0.1" in run.output
    run = CliRunner().invoke(main, ["flows"])
    assert run.exit_code == 2
    assert "no input: give capture files" in run.output and "not both" not in run.output
