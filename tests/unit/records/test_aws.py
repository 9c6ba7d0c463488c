"""AWS VPC Flow Logs: custom field orders, `-` values, NODATA/SKIPDATA, REJECT,
the default format without its header, Parquet, and damaged files."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from portmatrix.check import run_check
from portmatrix.errors import CaptureError
from portmatrix.records.formats import read_records
from support import flowlogs as fl
from support.paths import CAPTURES

INV = str(CAPTURES / "violations-small.inventory.yaml")
START = 1_709_287_200


def line(fields: dict[str, str], order=fl.V5) -> str:
    base = {k: "-" for k in order}
    base |= {"version": "5", "account-id": "123456789012", "log-status": "OK"}
    base |= {"interface-id": "eni-1", "action": "ACCEPT"}
    return " ".join({**base, **fields}[k] for k in order)


def record(src, dst, sport, dport, proto="6", pkts="3", flags="-", **kw) -> dict[str, str]:
    return {
        "srcaddr": src,
        "dstaddr": dst,
        "srcport": str(sport),
        "dstport": str(dport),
        "protocol": proto,
        "packets": pkts,
        "bytes": str(int(pkts) * 60) if pkts.isdigit() else "-",
        "start": str(START),
        "end": str(START + 5),
        "tcp-flags": flags,
        **kw,
    }


def write(tmp_path, lines: list[str], order=fl.V5, name="log.txt", header=True):
    text = ("\n".join(([" ".join(order)] if header else []) + lines) + "\n").encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    return str(path)


def flows(path) -> list[tuple]:
    from portmatrix.report.flow_rows import flow_columns, rows

    traffic = read_records([path])
    return sorted(
        (r["initiator"], r["responder"], r["responder_port"], r["outcome"], r["initiator_by"])
        for r in rows(flow_columns(traffic.flows))
    ) if len(traffic.flows) else [], traffic


HANDSHAKE = [
    record("10.40.1.7", "10.20.0.11", 37402, 443, flags="3"),  # SYN, FIN
    record("10.20.0.11", "10.40.1.7", 443, 37402, flags="19"),  # SYN-ACK, FIN
]


def test_any_field_order_and_newer_fields(tmp_path):
    order = list(fl.V5) + ["ecs-cluster-name", "some-future-field"]
    random.Random(7).shuffle(order)
    lines = [
        line({**r, "ecs-cluster-name": "c", "some-future-field": "x"}, order) for r in HANDSHAKE
    ]
    got, _ = flows(write(tmp_path, lines, order, name="shuffled.log.gz"))
    assert got == [("10.40.1.7", "10.20.0.11", 443, "established", "syn")]


def test_the_default_format_with_or_without_its_header(tmp_path):
    """Version 2: no tcp-flags, so the ports decide, and the report says so."""
    lines = [line(r, fl.DEFAULT) for r in HANDSHAKE]
    for header in (True, False):
        got, traffic = flows(write(tmp_path, lines, fl.DEFAULT, header=header))
        assert got == [("10.40.1.7", "10.20.0.11", 443, "established", "port")]
        assert any("no tcp-flags field" in r for r in traffic.remarks)


def test_dashes_nodata_and_skipdata(tmp_path):
    lines = [line(r) for r in HANDSHAKE] + [
        line({"start": str(START), "end": str(START + 60), "log-status": "NODATA"}),
        line(
            {
                "start": str(START),
                "end": str(START + 60),
                "log-status": "SKIPDATA",
                "interface-id": "eni-2",
            }
        ),
        line(record("10.40.1.7", "10.20.0.12", 41000, 5432, flags="2", **{"pkt-srcaddr": "-"})),
    ]
    got, traffic = flows(write(tmp_path, lines))
    assert ("10.40.1.7", "10.20.0.12", 5432, "unanswered", "syn") in got
    assert traffic.captures[0].frames == 3  # records taken; NODATA/SKIPDATA counted apart
    notices = traffic.notices()
    assert any("1 NODATA record" in n for n in notices)
    assert any("1 SKIPDATA record" in n and "missing from the log" in n for n in notices)
    assert traffic.weakened  # a service that looks missing may just not be logged


def test_reject_is_blocked_and_reported_as_the_design_says(tmp_path, run_cli):
    """Forbidden and blocked: the matrix working (info). Allowed, required and
    blocked: a misconfigured security group (error, required-unreachable)."""
    lines = [
        # users -> node 22: not allowed, and a security group dropped it
        line(record("10.40.1.7", "10.20.0.11", 40001, 22, flags="2", action="REJECT")),
        line(
            record(
                "10.40.1.7",
                "10.20.0.11",
                40001,
                22,
                flags="2",
                action="ACCEPT",
                **{"interface-id": "eni-2"},
            )
        ),
        # node -> node postgres: required, and dropped
        line(record("10.20.0.11", "10.20.0.12", 50000, 5432, flags="2", action="REJECT")),
    ]
    path = write(tmp_path, lines, name="rejects.log")
    result = run_check([path], ["thoughtspot"], INV, records="auto")
    by_port = {f.port: f for f in result.findings if f.kind == "flow"}
    assert by_port[22].outcomes == {"blocked": 1} and by_port[22].severity == "info"
    assert by_port[5432].outcomes == {"blocked": 1} and by_port[5432].severity == "error"
    assert "blocked" in by_port[5432].message
    (postgres,) = [c for c in result.coverage if c.rule == "postgres"]
    assert (postgres.failed, postgres.status) == (1, "required-unreachable")
    out = run_cli(
        "check", "--flowlog", path, "--rules", "thoughtspot", "--inventory", INV, "--format", "json"
    )
    assert out.exit_code == 1 and '"blocked": 1' in out.stdout


def test_parquet_delivery(tmp_path):
    recs = fl.logged(
        run_check([str(CAPTURES / "violations-small.pcap")], ["thoughtspot"], INV).traffic.flows
    )
    path = fl.write_aws_parquet(tmp_path / "part-0.parquet", recs)
    got, traffic = flows(str(path))
    text, _ = flows(str(fl.write_aws(tmp_path / "same.log", recs)))
    assert got == text and len(got) == 5
    assert traffic.captures[0].format == "aws-vpc-parquet"


def test_pkt_addresses_are_the_packets_own(tmp_path):
    """Behind a NAT gateway or to a secondary address, srcaddr/dstaddr name the
    interface; pkt-srcaddr/pkt-dstaddr the packet's own addresses."""
    r = record(
        "10.20.0.99",
        "10.20.0.11",
        40000,
        22,
        flags="2",
        **{"pkt-srcaddr": "10.30.0.5", "pkt-dstaddr": "10.20.0.11"},
    )
    got, _ = flows(write(tmp_path, [line(r)]))
    assert got[0][:3] == ("10.30.0.5", "10.20.0.11", 22)


def test_damaged_lines_are_named_and_the_rest_is_read(tmp_path):
    lines = [line(r) for r in HANDSHAKE]
    lines.insert(1, "5 123456789012 eni-1 10.0.0.1 10.0.0.2 too few fields")
    lines.append(line(record("10.40.1.7", "10.20.0.12", 41000, 5432, pkts="abc", flags="2")))
    lines.append(line(record("10.40.1.7", "not-an-address", 41000, 5432, flags="2")))
    lines.append("")
    lines.append(line(record("10.40.1.7", "10.20.0.13", 41001, 8443, flags="2")))
    got, traffic = flows(write(tmp_path, lines, name="damaged.log.gz"))
    assert [g[:3] for g in got] == [
        ("10.40.1.7", "10.20.0.11", 443),
        ("10.40.1.7", "10.20.0.13", 8443),
    ]
    (notice,) = traffic.captures[0].notices
    assert notice.startswith("3 line(s) are not flow records and were skipped")
    assert "line 3: 8 fields where the header names 29" in notice
    assert "line 5: packets 'abc' is not a number" in notice
    assert "line 6: dstaddr 'not-an-address' is not an address" in notice


def test_a_file_that_is_all_damage_is_one_clear_error(tmp_path):
    lines = ["5 x y z"] * 6
    path = write(tmp_path, lines)
    with pytest.raises(CaptureError, match=r"log.txt:line 2: no flow record could be read"):
        read_records([path])
    headerless = tmp_path / "notes.txt"
    headerless.write_text("just some notes\nand more\n")
    with pytest.raises(CaptureError, match="no header line naming AWS flow log fields"):
        read_records([str(headerless)], fmt="aws")


def test_a_gzip_cut_short_is_read_up_to_the_cut(tmp_path):
    lines = [
        line(record("10.40.1.7", "10.20.0.11", 30000 + i, 443, flags="2")) for i in range(3000)
    ]
    path = write(tmp_path, lines, name="cut.log.gz")
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    got, traffic = flows(path)
    assert 0 < len(got) < 3000
    assert "compressed data ends early" in traffic.captures[0].truncated
    assert any("compressed data ends early" in n for n in traffic.notices())
