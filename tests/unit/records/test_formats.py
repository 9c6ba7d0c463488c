"""The registry of flow-record formats: each told from its content, folders
walked as S3 lays logs out, and the CLI's --flowlog options as a person uses them."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest

from portmatrix import cli
from portmatrix.check import run_check
from portmatrix.errors import CaptureError
from portmatrix.records.formats import FORMATS, check_inputs, detect, input_kind, read_records
from portmatrix.sources import workers
from portmatrix.sources.inputs import expand_inputs, skipped_notice
from support import flowlogs as fl
from support.paths import CAPTURES, REPO

PCAP = str(CAPTURES / "violations-small.pcap")
INV = str(CAPTURES / "violations-small.inventory.yaml")
ZEEK = REPO / "tests" / "fixtures" / "zeek" / "violations-small.conn.log"


@pytest.fixture(scope="module")
def recs():
    return fl.logged(run_check([PCAP], ["thoughtspot"], INV).traffic.flows)


@pytest.fixture
def samples(tmp_path, recs) -> dict[str, str]:
    """One file of every format."""
    nfdump = tmp_path / "nfcapd.202403011000"
    nfdump.write_bytes(b"\x0c\xa5\x02\x00" + bytes(60))  # the header's magic and layout
    return {
        "aws": str(fl.write_aws(tmp_path / "a.log.gz", recs)),
        "aws-parquet": str(fl.write_aws_parquet(tmp_path / "a.parquet", recs)),
        "azure": str(fl.write_azure(tmp_path / "PT1H.json", recs)),
        "gcp": str(fl.write_gcp(tmp_path / "gcp.json", recs)),
        "zeek": str(ZEEK),
        "netflow": str(nfdump),
    }


def test_every_format_is_told_from_its_content(samples, tmp_path):
    assert {name: detect(path) for name, path in samples.items()} == {
        "aws": "aws",
        "aws-parquet": "aws",
        "azure": "azure",
        "gcp": "gcp",
        "zeek": "zeek",
        "netflow": "netflow",
    }
    assert set(FORMATS) == {detect(p) for p in samples.values()}  # no format untested
    (tmp_path / "README").write_text("notes\n")
    assert detect(str(tmp_path / "README")) is None
    assert detect(PCAP) is None


def test_the_cli_offers_every_format():
    assert tuple(FORMATS) == cli._FLOWLOG_FORMATS


def test_s3_layouts_are_walked_and_other_files_skipped(tmp_path, recs):
    """AWSLogs/<account>/vpcflowlogs/<region>/YYYY/MM/DD/ and the Hive-style layout."""
    plain = (
        tmp_path / "AWSLogs" / "123456789012" / "vpcflowlogs" / "eu-west-1" / "2024" / "03" / "01"
    )
    hive = tmp_path / "AWSLogs" / "aws-account-id=123456789012" / "aws-service=vpcflowlogs"
    hive = hive / "aws-region=eu-west-1" / "year=2024" / "month=03" / "day=01" / "hour=10"
    for folder in (plain, hive):
        folder.mkdir(parents=True)
    half = len(recs) // 2
    fl.write_aws(
        plain / "123456789012_vpcflowlogs_eu-west-1_fl-1_20240301T1000Z_a.log.gz", recs[:half]
    )
    fl.write_aws_parquet(
        hive / "123456789012_vpcflowlogs_eu-west-1_fl-1_20240301T1005Z_b.parquet", recs[half:]
    )
    (plain / "README.txt").write_text("not a log\n")
    (plain / ".hidden.log.gz").write_bytes(gzip.compress(b"x"))
    inputs = expand_inputs([str(tmp_path)], kind=input_kind())
    assert len(inputs) == 2 and inputs.skipped == [str(plain / "README.txt")]
    assert "not flow logs" in skipped_notice(inputs)
    joined = run_check(list(inputs), ["thoughtspot"], INV, records="auto")
    whole = run_check(
        [str(fl.write_aws(tmp_path / "all.log", recs))], ["thoughtspot"], INV, records="auto"
    )
    assert joined.verdict_counts() == whole.verdict_counts()
    assert len(joined.traffic.flows) == len(whole.traffic.flows) == 5
    with pytest.raises(CaptureError, match="no flow log among its 1 file"):
        notes = tmp_path / "notes"
        notes.mkdir()
        (notes / "x.txt").write_text("x")
        expand_inputs([str(notes)], kind=input_kind())


def test_formats_mixed_and_files_in_any_order_or_process(tmp_path, recs, monkeypatch):
    aws = str(fl.write_aws(tmp_path / "a.log", recs[:4]))
    azure = str(fl.write_azure(tmp_path / "b.json", recs[4:]))
    one = read_records([aws, azure])
    other = read_records([azure, aws])
    assert sorted(one.flows["resp_port"].tolist()) == sorted(other.flows["resp_port"].tolist())
    monkeypatch.setattr(workers, "PER_PROCESS", 1)  # worth a process each, however small
    parallel = read_records([aws, azure], jobs=2)
    assert sorted(parallel.flows["resp_port"].tolist()) == sorted(one.flows["resp_port"].tolist())


def test_explicit_files_are_checked_before_the_read(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(CaptureError, match=r"notes\.txt: not a flow log of a known format"):
        check_inputs([str(tmp_path / "notes.txt")])
    with pytest.raises(CaptureError, match="not standard input"):
        check_inputs(["-"])


def run(run_cli, *args):
    return run_cli("check", *args, "--rules", "thoughtspot", "--inventory", INV, "-q")


def test_cli(run_cli, samples, tmp_path):
    ok = run(run_cli, "--flowlog", samples["aws"], "--format", "json")
    assert ok.exit_code == 1 and json.loads(ok.stdout)["inputs"]["captures"][0]["format"] == (
        "aws-vpc+gzip"
    )
    forced = run(run_cli, "--flowlog", samples["gcp"], "--flowlog-format", "gcp")
    assert forced.exit_code == 0 and "WARNINGS" in forced.stdout  # sampled: guesses only
    both = run(run_cli, PCAP, "--flowlog", samples["aws"])
    assert both.exit_code == 2 and "quote a glob: --flowlog 'logs/*.gz'" in both.stderr
    lonely = run(run_cli, PCAP, "--flowlog-format", "aws")
    assert lonely.exit_code == 2 and "--flowlog-format names the format" in lonely.stderr
    typo = run(run_cli, "--flowlog", samples["aws"], "--flowlog-format", "asw")
    assert typo.exit_code == 2 and "did you mean aws?" in typo.stderr
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    unknown = run(run_cli, "--flowlog", str(notes))
    assert unknown.exit_code == 2
    assert unknown.stderr.startswith(f"portmatrix: error: {notes}: not a flow log")
    wrong = run(run_cli, "--flowlog", str(notes), "--flowlog-format", "aws")
    assert wrong.exit_code == 2 and "line 1: no header line naming AWS" in wrong.stderr
    dask = run(run_cli, "--flowlog", samples["aws"], "--dask", "tcp://127.0.0.1:1")
    assert dask.exit_code == 2 and "--dask reads captures" in dask.stderr
    zeek = run(run_cli, "--zeek", samples["zeek"])
    assert zeek.exit_code == 1


def test_nfdump_missing_is_one_line_naming_the_package(run_cli, samples, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda _: None)
    out = run(run_cli, "--flowlog", samples["netflow"])
    assert out.exit_code == 2
    assert "nfdump is needed" in out.stderr and "apt-get install nfdump" in out.stderr
