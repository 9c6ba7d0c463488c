"""`portmatrix flows`, run through the CLI."""

from __future__ import annotations

import csv
import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from portmatrix.cli import flows_cmd
from portmatrix.report.flow_rows import COLUMNS
from portmatrix.report.flows_view import FORMATS
from portmatrix.testing.captures import cut, ether, pcap_bytes, tcp_session, write_pcap
from support.paths import SHARED_PCAPS as SHARED


@pytest.fixture
def two_flows(tmp_path) -> Path:
    packets = tcp_session("10.0.0.1", "10.0.0.2", 40000, 443) + tcp_session(
        "10.0.0.1", "10.0.0.2", 40001, 443, close="rst"
    )
    return write_pcap(tmp_path / "two.pcap", [ether(p) for p in packets])


def test_format_choices_are_the_registry():
    (option,) = [p for p in flows_cmd.params if p.name == "fmt"]
    assert isinstance(option.type, click.Choice)
    assert set(option.type.choices) == set(FORMATS)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format(run_cli, two_flows, fmt, tmp_path):
    result = run_cli("flows", two_flows, "--format", fmt)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    out = tmp_path / f"flows.{fmt}"
    written = run_cli("flows", two_flows, "--format", fmt, "--output", out)
    assert written.exit_code == 0 and written.stdout == ""
    assert out.read_text(encoding="utf-8") == result.stdout


def test_default_is_the_table(run_cli, two_flows):
    result = run_cli("flows", two_flows)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("proto")
    assert lines[-5:] == [
        "2 flows from 14 frames in 1 file(s)",
        "  decoded IP: 14",
        "  non-IP: 0",
        "  unsupported link type: 0",
        "  undecodable: 0",
    ]


def test_csv_header(run_cli, two_flows):
    result = run_cli("flows", two_flows, "--format", "csv")
    table = list(csv.reader(io.StringIO(result.stdout)))
    assert table[0] == list(COLUMNS)
    assert [row[COLUMNS.index("close")] for row in table[1:]] == ["fin", "rst"]


def test_truncation_notice(run_cli, two_flows):
    cut(two_flows, two_flows.stat().st_size - 5)
    table = run_cli("flows", two_flows)
    assert table.exit_code == 2  # listed all the same, and said as an error
    assert "file cut short" in table.stderr and "analyze the complete one" in table.stderr
    assert (
        "notice: " in table.stdout and "file cut short in the middle of record 14" in table.stdout
    )
    doc = json.loads(run_cli("flows", two_flows, "--format", "json").stdout)
    assert any("record 14" in n for n in doc["notices"])


def test_several_files_and_directories(run_cli, two_flows, tmp_path):
    result = run_cli("flows", two_flows, tmp_path, "--format", "jsonl")
    assert result.exit_code == 0
    flows = [json.loads(line)["portmatrix"] for line in result.stdout.splitlines()]
    # The same file twice (named, then found in its directory): the same packets twice.
    assert [f["frames"] for f in flows] == ["0:1 0:2 0:3", "0:9 0:10 0:11"]
    assert [f["packets_fwd"] for f in flows] == [10, 8]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_standard_input(run_cli, compress):
    content = pcap_bytes([ether(p) for p in tcp_session("10.0.0.1", "10.0.0.2", 1, 2)])
    if compress:
        content = gzip.compress(content)
    result = run_cli("flows", "-", "--format", "jsonl", input=content)
    assert result.exit_code == 0, result.stderr
    (event,) = [json.loads(line) for line in result.stdout.splitlines()]
    flow = event["portmatrix"]
    assert (flow["responder_port"], flow["outcome"]) == (2, "established")
    # An ECS event: the connection, and its Community ID (the spec's own algorithm).
    assert (event["destination"]["port"], event["event"]["outcome"]) == (2, "success")
    assert event["source"] == {
        "ip": "10.0.0.1",
        "address": "10.0.0.1",
        "port": 1,
        "packets": flow["packets_fwd"],
        "bytes": flow["bytes_fwd"],
    }
    assert event["network"]["community_id"].startswith("1:")
    assert event["@timestamp"] == flow["first_seen"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"GET / HTTP/1.1\r\n\r\n" * 3, "byte 0: not a pcap or pcapng capture"),
        (b"", "byte 0: empty"),
        (pcap_bytes([], version=(1, 4)), "byte 4: pcap version 1.4 is not supported"),
    ],
    ids=["text", "empty", "bad-version"],
)
def test_not_a_capture_is_one_line_and_exit_2(run_cli, tmp_path, content, message):
    path = tmp_path / "x.pcap"
    path.write_bytes(content)
    result = run_cli("flows", path)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"portmatrix: error: {path}:{message}")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_shared_unreadable_capture(run_cli):
    path = SHARED / "libpcap__pcap-invalid-version-1.pcap"
    if not path.exists():
        pytest.skip(f"{path} is not there")
    result = run_cli("flows", path)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "version 1.4" in result.stderr


def test_missing_file_and_unwritable_output(run_cli, two_flows, tmp_path):
    missing = run_cli("flows", tmp_path / "nope.pcap")
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    bad_out = run_cli("flows", two_flows, "--output", tmp_path / "no" / "dir" / "x.csv")
    assert bad_out.exit_code == 2
    assert bad_out.stderr.startswith("portmatrix: error: ")
    assert f"the folder {tmp_path / 'no' / 'dir'} does not exist" in bad_out.stderr


def test_flows_never_loads_scapy(two_flows):
    # The capture path is columnar: scapy (slow to import) is for the few packets
    # that need dissecting, never for reading or decoding.
    code = (
        "import sys\n"
        "from portmatrix.cli import main\n"
        "import portmatrix.testing.captures\n"
        f"try:\n    main(['flows', {str(two_flows)!r}, '--format', 'json'])\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('scapy', 'pyshark'))\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["flows"]


def test_app_labels_every_flow(run_cli, tmp_path):
    import csv

    from support import apps

    packets = apps.conversation("10.1.0.5", "10.2.0.9", 40000, 2222, apps.BY_LABEL["ssh"].messages)
    packets += apps.conversation("10.1.0.5", "10.2.0.9", 40001, 22, apps.UNIDENTIFIED_CASE.messages)
    capture = write_pcap(tmp_path / "c.pcap", apps.frames_of(packets))
    out = tmp_path / "f.csv"
    result = run_cli("flows", capture, "--app", "-o", out, "-q")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    assert [(r["responder_port"], r["app"], r["app_details"]) for r in rows] == [
        ("2222", "ssh", "server=OpenSSH_9.2p1"),
        ("22", "unidentified", ""),
    ]
    table = run_cli("flows", capture, "--app").stdout
    assert table.splitlines()[0].split()[-1] == "app" and "app_details" not in table
    assert "app" not in run_cli("flows", capture, "--format", "csv").stdout.splitlines()[0]


def test_app_from_standard_input_says_why_not(run_cli, tmp_path):
    from support import apps

    packets = apps.conversation("10.1.0.5", "10.2.0.9", 40000, 2222, apps.BY_LABEL["ssh"].messages)
    capture = write_pcap(tmp_path / "c.pcap", apps.frames_of(packets))
    result = run_cli("flows", "-", "--app", input=capture.read_bytes())
    assert result.exit_code == 0
    assert "cannot be read a second time" in result.stdout


# Flow records -------------------------------------------------------------------


@pytest.fixture
def flowlog_of_a_capture(tmp_path):
    """An AWS flow log of violations-small.pcap's flows, logged at two ENIs."""
    from portmatrix.check import run_check
    from support import flowlogs as fl
    from support.paths import CAPTURES

    pcap = CAPTURES / "violations-small.pcap"
    inv = CAPTURES / "violations-small.inventory.yaml"
    flows = run_check([str(pcap)], ["thoughtspot"], str(inv)).traffic.flows
    recs = fl.logged(flows, observers=("eni-0a", "eni-0b"))
    return pcap, fl.write_aws(tmp_path / "vpc.log.gz", recs), recs


def test_flows_of_flow_records_are_the_captures_with_their_record_counts(
    run_cli, flowlog_of_a_capture, tmp_path
):
    pcap, log, recs = flowlog_of_a_capture
    out = tmp_path / "flows.csv"
    result = run_cli("flows", "--flowlog", log, "-o", out, "-q")
    assert result.exit_code == 0, result.stderr
    got = list(csv.DictReader(out.open()))
    from_capture = json.loads(run_cli("flows", pcap, "--format", "json").stdout)["flows"]
    key = ("initiator", "responder", "responder_port", "outcome")
    assert sorted(tuple(str(r[k]) for k in key) for r in got) == sorted(
        tuple(str(r[k]) for k in key) for r in from_capture
    )
    # Each direction that sent anything, at each of the two ENIs: one record each.
    for row in got:
        directions = 1 + (int(row["packets_rev"]) > 0)
        assert int(row["records"]) == 2 * directions, row
    assert sum(int(r["records"]) for r in got) == len(recs)
    assert "records" not in from_capture[0]
    doc = json.loads(run_cli("flows", "--flowlog", log, "--format", "json").stdout)
    assert [r["records"] for r in doc["flows"]] == [int(r["records"]) for r in got]
    table = run_cli("flows", "--flowlog", log).stdout
    assert table.splitlines()[0].split()[-1] == "records"
    assert f"{len(got)} flows from {len(recs)} records in 1 file(s)" in table
    judged = tmp_path / "judged.csv"
    inv = pcap.with_name("violations-small.inventory.yaml")
    run_cli(
        "check",
        "--flowlog",
        log,
        "--rules",
        "thoughtspot",
        "--inventory",
        inv,
        "--flows",
        judged,
        "-q",
        "-o",
        tmp_path / "report.json",
    )
    assert sorted(int(r["records"]) for r in csv.DictReader(judged.open())) == sorted(
        int(r["records"]) for r in got
    )


def test_flows_of_flow_records_as_a_person_gets_them_wrong(run_cli, flowlog_of_a_capture):
    pcap, log, _ = flowlog_of_a_capture
    for args, says in (
        (("--flowlog", log, pcap), "not both"),
        (("--flowlog", log, "--app"), "--app reads payloads"),
        (("--flowlog-format", "aws", pcap), "--flowlog-format names the format"),
        (("--flowlog", pcap), "not a flow log of a known format"),
        (("--flowlog", log, "--flowlog-format", "azure"), "vpc.log.gz:line 1: not JSON"),
    ):
        result = run_cli("flows", *args)
        assert result.exit_code == 2, (args, result.stdout)
        assert says in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_notices_reach_the_terminal_whatever_the_format(tmp_path):
    """A CSV (or a file) has no place for what was skipped: stderr says it; the
    table on the terminal says it itself, once."""
    from click.testing import CliRunner

    from portmatrix.cli import main

    log = tmp_path / "a.log"
    log.write_text(
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
        "bytes start end action log-status\n"
        "2 1 eni-1 10.0.0.1 10.0.0.2 40000 443 6 3 300 1700000000 1700000060 ACCEPT OK\n"
        "this line is no flow record\n"
    )
    runner = CliRunner()
    csv = runner.invoke(main, ["flows", "--flowlog", str(log), "--format", "csv"])
    assert csv.exit_code == 0, csv.output
    assert "portmatrix: notice: " in csv.stderr and "skipped" in csv.stderr
    table = runner.invoke(main, ["flows", "--flowlog", str(log)])
    assert "portmatrix: notice: " not in table.stderr and "skipped" in table.stdout
    assert "from 1 records" in table.stdout and "decoded IP" not in table.stdout  # no packets
    quiet = runner.invoke(main, ["flows", "--flowlog", str(log), "--format", "csv", "-q"])
    assert quiet.stderr == ""
