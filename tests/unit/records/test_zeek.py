"""Zeek conn.log as a source: the same verdicts as the capture it describes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from portmatrix.check import run_check
from portmatrix.errors import CaptureError
from portmatrix.flows.model import INITIATOR_BY, OUTCOMES
from portmatrix.records.zeek import read_conn_logs
from support.paths import REPO as ROOT

LOG = ROOT / "tests" / "fixtures" / "zeek" / "violations-small.conn.log"
PCAP = str(ROOT / "captures" / "violations-small.pcap")
INV = str(ROOT / "captures" / "violations-small.inventory.yaml")


def summary(result):
    return (result.verdict_counts(), sorted((f.id, f.severity, f.verdict) for f in result.findings))


@pytest.fixture(scope="module")
def from_pcap():
    return summary(run_check([PCAP], ["thoughtspot"], INV))


def as_json(tsv: Path, out: Path) -> Path:
    """The same log as Zeek writes it with LogAscii::use_json=T."""
    fields = None
    records = []
    for line in tsv.read_text().splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
        elif not line.startswith("#"):
            values = line.split("\t")
            rec = {k: v for k, v in zip(fields, values, strict=True) if v != "-"}
            for k in ("ts", "duration"):
                rec[k] = float(rec[k])
            for k in (
                "id.orig_p",
                "id.resp_p",
                "orig_pkts",
                "resp_pkts",
                "orig_ip_bytes",
                "resp_ip_bytes",
            ):
                rec[k] = int(rec[k])
            records.append(json.dumps(rec))
    out.write_text("\n".join(records) + "\n")
    return out


def test_tsv_log_gives_the_captures_verdicts(from_pcap):
    assert summary(run_check([str(LOG)], ["thoughtspot"], INV, records="zeek")) == from_pcap


def test_json_gzip_and_rotated_files_too(tmp_path, from_pcap):
    json_log = as_json(LOG, tmp_path / "conn.json.log")
    assert summary(run_check([str(json_log)], ["thoughtspot"], INV, records="zeek")) == from_pcap
    gz = tmp_path / "conn.log.gz"
    gz.write_bytes(gzip.compress(LOG.read_bytes()))
    assert summary(run_check([str(gz)], ["thoughtspot"], INV, records="zeek")) == from_pcap
    # Rotated: the records over two files (each with its header).
    lines = LOG.read_text().splitlines()
    header = [x for x in lines if x.startswith("#") and not x.startswith("#close")]
    body = [x for x in lines if not x.startswith("#")]
    (tmp_path / "rot").mkdir()
    (tmp_path / "rot" / "conn.09:00:00-10:00:00.log").write_text(
        "\n".join(header + body[:2]) + "\n"
    )
    (tmp_path / "rot" / "conn.10:00:00-11:00:00.log").write_text(
        "\n".join(header + body[2:]) + "\n"
    )
    files = sorted(str(p) for p in (tmp_path / "rot").iterdir())
    assert summary(run_check(files, ["thoughtspot"], INV, records="zeek")) == from_pcap


def test_cli(run_cli, tmp_path):
    out = tmp_path / "r.json"
    result = run_cli(
        "check",
        "--zeek",
        str(LOG),
        "--rules",
        "thoughtspot",
        "--inventory",
        INV,
        "--format",
        "json",
        "--output",
        str(out),
    )
    assert result.exit_code == 1
    (source,) = json.loads(out.read_text())["inputs"]["captures"]
    assert source["format"] == "zeek-conn" and source["frames"] == 5 and source["sha256"]
    both = run_cli("check", PCAP, "--zeek", str(LOG), "--rules", "thoughtspot")
    assert (
        both.exit_code == 2 and "give capture files, or flow records with --flowlog" in both.stderr
    )


FIELDS = (
    "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\t"
    "conn_state\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes"
)


def one(tmp_path, line: str):
    log = tmp_path / "conn.log"
    log.write_text(f"#separator \\x09\n#unset_field\t-\n#fields\t{FIELDS}\n{line}\n")
    flows = read_conn_logs([str(log)]).flows
    assert len(flows) == 1
    return OUTCOMES[flows["outcome"][0]], INITIATOR_BY[flows["initiator_by"][0]]


@pytest.mark.parametrize(
    ("state", "history", "outcome", "by"),
    [
        ("S0", "S", "unanswered", "syn"),
        ("REJ", "Sr", "refused", "syn"),
        ("SF", "ShADadFf", "established", "syn"),
        ("RSTO", "ShADR", "established", "syn"),
        ("OTH", "Dd", "midstream", "port"),
        ("SF", "^hADadfF", "established", "port"),  # Zeek flipped the direction itself
        ("SHR", "h", "midstream", "syn-ack"),
    ],
)
def test_conn_states_and_history(tmp_path, state, history, outcome, by):
    line = (
        f"1709287200.0\tC1\t10.0.0.1\t40000\t10.0.0.2\t22\ttcp\t1.0\t{state}\t{history}"
        f"\t3\t200\t2\t100"
    )
    assert one(tmp_path, line) == (outcome, by)


def test_udp_and_icmp(tmp_path):
    udp = "1709287200.0\tC1\t10.0.0.1\t40000\t10.0.0.2\t53\tudp\t-\tS0\tD\t1\t60\t0\t0"
    assert one(tmp_path, udp) == ("unanswered", "first-packet")
    icmp = "1709287200.0\tC1\t10.0.0.1\t8\t10.0.0.2\t0\ticmp\t0.1\tOTH\t-\t1\t84\t1\t84"
    assert one(tmp_path, icmp) == ("established", "request")
    v6_echo = "1709287200.0\tC1\tfd00::1\t128\tfd00::2\t129\ticmp\t0.1\tOTH\t-\t1\t84\t1\t84"
    assert one(tmp_path, v6_echo) == ("established", "request")
    # Type 128 is an ICMPv6 echo request; in ICMPv4 it is nothing of the kind.
    v4_128 = "1709287200.0\tC1\t10.0.0.1\t128\t10.0.0.2\t0\ticmp\t0.1\tOTH\t-\t1\t84\t1\t84"
    assert one(tmp_path, v4_128) == ("established", "first-packet")


def test_damaged_logs_are_clear_errors(tmp_path):
    log = tmp_path / "conn.log"
    log.write_text("1709287200.0\tC1\t10.0.0.1\n")
    with pytest.raises(CaptureError, match="before the #fields header") as err:
        read_conn_logs([str(log)])
    assert err.value.where == "line 1"
    log.write_text('{"id.orig_h": "10.0.0.1", oops}\n')
    with pytest.raises(CaptureError, match="not JSON"):
        read_conn_logs([str(log)])


def test_other_zeek_logs_are_skipped_not_read_as_connections(tmp_path, from_pcap):
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "conn.log").write_text(LOG.read_text())
    (folder / "dns.log").write_text(
        "#separator \\x09\n#path\tdns\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\t"
        "id.resp_p\tproto\tquery\n1709287200.1\tCx\t10.20.0.11\t5353\t10.20.0.12\t53\tudp\t"
        "example.com\n"
    )
    result = run_check(
        sorted(str(p) for p in folder.iterdir()), ["thoughtspot"], INV, records="zeek"
    )
    assert summary(result) == from_pcap
    (dns,) = [c for c in result.traffic.captures if c.path.endswith("dns.log")]
    assert "not a conn log" in dns.notices[0]


def test_cut_gzip_log_is_analyzed_up_to_the_cut(tmp_path):
    whole = gzip.compress(LOG.read_bytes() * 20)
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    traffic = read_conn_logs([str(cut)])
    assert "ends early" in traffic.captures[0].truncated


def test_not_utf8_is_a_clear_error(tmp_path):
    bad = tmp_path / "conn.log"
    bad.write_bytes(b"#separator \\x09\n#fields\tts\n\xff\xfe\x00garbage\n")
    with pytest.raises(CaptureError, match="not text"):
        read_conn_logs([str(bad)])


def test_iso_timestamps(tmp_path, from_pcap):
    json_log = as_json(LOG, tmp_path / "conn.json.log")
    import datetime as dt

    lines = []
    for line in json_log.read_text().splitlines():
        rec = json.loads(line)
        rec["ts"] = dt.datetime.fromtimestamp(rec["ts"], dt.UTC).isoformat().replace("+00:00", "Z")
        lines.append(json.dumps(rec))
    json_log.write_text("\n".join(lines) + "\n")
    assert summary(run_check([str(json_log)], ["thoughtspot"], INV, records="zeek")) == from_pcap


GOOD = "1709287200.0\tC1\t10.0.0.1\t40000\t10.0.0.2\t22\ttcp\t1.0\tSF\tShAF\t3\t200\t2\t100"


def tsv(tmp_path, *lines: str, separator: str = "\\x09"):
    log = tmp_path / "conn.log"
    log.write_text(
        f"#separator {separator}\n#unset_field\t-\n#fields\t{FIELDS}\n" + "\n".join(lines) + "\n"
    )
    return log


@pytest.mark.parametrize("separator", ["", "\\x", "\\"], ids=["empty", "bad-escape", "backslash"])
def test_a_separator_that_is_none_is_a_clear_error(tmp_path, separator):
    log = tsv(tmp_path, GOOD, separator=separator)
    with pytest.raises(CaptureError, match=r"#separator .* is not a separator") as err:
        read_conn_logs([str(log)])
    assert err.value.where == "line 1"


@pytest.mark.parametrize(
    "ts", ["nan", "inf", "-inf", "-5", "1e300", "99999999999", "9" * 400], ids=lambda t: t[:8]
)
def test_a_time_out_of_range_takes_the_time_of_the_record_before(tmp_path, ts):
    bad = GOOD.replace("1709287200.0", ts, 1).replace("C1", "C2")
    traffic = read_conn_logs([str(tsv(tmp_path, GOOD, bad, bad))])
    flows = traffic.flows
    assert len(flows) == 3
    assert flows["first_ts"].tolist() == [1709287200 * 10**9] * 3
    # The good record lasted a second; the others get its start, and no duration.
    assert sorted(flows["last_ts"].tolist()) == [1709287200 * 10**9] * 2 + [1709287201 * 10**9]
    assert traffic.counts.ts_out_of_range == 2
    (notice,) = traffic.captures[0].notices
    assert notice.startswith("2 record(s) have a time out of range")


def test_records_before_any_good_time_take_the_first_good_one(tmp_path):
    bad = GOOD.replace("1709287200.0", "nan", 1)
    traffic = read_conn_logs([str(tsv(tmp_path, bad, GOOD))])
    assert traffic.flows["first_ts"].tolist() == [1709287200 * 10**9] * 2
    only_bad = read_conn_logs([str(tsv(tmp_path, bad))])
    assert only_bad.flows["first_ts"].tolist() == [(tmp_path / "conn.log").stat().st_mtime_ns]


@pytest.mark.parametrize("duration", ["nan", "inf", "-1", "1e300"])
def test_a_duration_out_of_range_is_a_time_out_of_range(tmp_path, duration):
    bad = GOOD.replace("\t1.0\t", f"\t{duration}\t")
    traffic = read_conn_logs([str(tsv(tmp_path, GOOD, bad))])
    assert traffic.flows["last_ts"].max() == 1709287201 * 10**9
    assert traffic.counts.ts_out_of_range == 1


@pytest.mark.parametrize("count", ["-3", "nan", "inf", "1e30", "9" * 30])
def test_counts_out_of_range_are_taken_as_zero_and_counted(tmp_path, count):
    bad = GOOD.replace("\t3\t200\t", f"\t{count}\t{count}\t")
    traffic = read_conn_logs([str(tsv(tmp_path, bad))])
    assert traffic.flows["pkts_fwd"].tolist() == [0] and traffic.flows["bytes_fwd"].tolist() == [0]
    assert "packet or byte count out of range" in traffic.captures[0].notices[0]


def test_ports_out_of_range_skip_the_record_with_one_notice(tmp_path):
    bad = [GOOD.replace("\t40000\t", f"\t{p}\t") for p in ("70000", "-1", "nan", "1e400")] * 5
    traffic = read_conn_logs([str(tsv(tmp_path, GOOD, *bad))])
    assert len(traffic.flows) == 1
    (notice,) = traffic.captures[0].notices
    assert notice == "20 line(s) are not connection records (skipped): line 5, 6, 7, 8, 9, ..."


def test_json_with_huge_numbers_deep_nesting_and_long_lines(tmp_path):
    good = {
        "ts": 1709287200.0,
        "id.orig_h": "10.0.0.1",
        "id.orig_p": 40000,
        "id.resp_h": "10.0.0.2",
        "id.resp_p": 22,
        "proto": "tcp",
        "conn_state": "SF",
        "history": "ShAF",
        "orig_pkts": 3,
    }
    lines = [
        json.dumps(good),
        json.dumps(good | {"ts": 10**400}),  # an integer no float holds
        json.dumps(good | {"orig_pkts": 10**30, "resp_ip_bytes": -(10**30)}),
        '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}",  # deeper than the JSON parser goes
        json.dumps(good | {"history": "x" * (3 << 20)}),  # a line of 3 MB
        json.dumps(good | {"ts": "not a time"}),
    ]
    log = tmp_path / "conn.json"
    log.write_text("\n".join(lines) + "\n")
    traffic = read_conn_logs([str(log)])
    assert len(traffic.flows) == 3
    assert traffic.flows["pkts_fwd"].tolist() == [3, 3, 0]
    notices = traffic.captures[0].notices
    assert notices[0] == "3 line(s) are not connection records (skipped): line 4, 5, 6"
    assert "1 record(s) have a time out of range" in notices[1]
    assert "1 record(s) have a packet or byte count out of range" in notices[2]


def test_hostile_logs_through_the_cli_exit_with_findings_not_a_traceback(run_cli, tmp_path):
    bad = GOOD.replace("1709287200.0", "inf", 1).replace("\t3\t200\t", "\t1e999\t-5\t")
    log = tsv(tmp_path, GOOD, bad)
    result = run_cli("check", "--zeek", str(log), "--rules", "thoughtspot", "--format", "html")
    assert result.exit_code in (0, 1), result.stderr
    assert "NaT" not in result.stdout
