"""`check --flows FILE`: every flow with its verdict and the rule (or exception)
that decided it, as CSV, JSON or Parquet."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sys

import pytest

from portmatrix.check import run_check
from portmatrix.errors import PortmatrixError
from portmatrix.report.flow_rows import COLUMNS
from portmatrix.report.verdict_flows import render_flows, verdict_columns, write_flows
from portmatrix.testing.captures import ether, tcp_session, write_pcap
from support.site import ADMIN, BACKUP, N1, N2, OUT1, OUT2, USER

FLOWS = [
    # (initiator, responder, port, verdict, rule)
    (USER, N1, 443, "allowed", "https-from-users"),
    (N1, ADMIN, 22, "wrong-direction", "ssh-from-admins"),
    (USER, N2, 22, "unexpected-source", ""),
    (USER, N1, 8443, "unexpected-port", ""),
    (OUT1, OUT2, 80, "out-of-scope", ""),
    (BACKUP, N2, 22, "allowed", "exception:backup-ssh"),  # active exception
    (BACKUP, N1, 22, "allowed", "exception:backup-ssh"),
]


@pytest.fixture
def result_of(site, tmp_path):
    """`result_of(today, files=1)`: FLOWS, split into `files` captures, checked
    against the small site and its exceptions on `today`."""
    small = site()

    def run(today, files=1):
        packets = []
        for k, (client, server, port, *_) in enumerate(FLOWS):
            packets += tcp_session(client, server, 40000 + k, port)
        packets = [ether(p) for p in packets]
        size = -(-len(packets) // files)
        paths = [
            str(write_pcap(tmp_path / f"c{n}.pcap", packets[at : at + size]))
            for n, at in enumerate(range(0, len(packets), size))
        ]
        rules = [str(small.matrix), str(small.exceptions)]
        return run_check(paths, rules, str(small.inventory), today=today)

    return run


def test_every_flow_with_verdict_and_rule(result_of):
    columns = verdict_columns(result_of(dt.date(2025, 1, 1)))
    assert list(columns) == [*COLUMNS, "verdict", "rule", "app", "app_details"]
    got = list(zip(columns["initiator"], columns["responder_port"], strict=True))
    assert got == [(c, port) for c, _, port, _, _ in FLOWS]
    assert columns["verdict"] == [v for *_, v, _ in FLOWS]
    assert columns["rule"] == [r for *_, r in FLOWS]


def test_an_expired_exception_allows_nothing(result_of):
    columns = verdict_columns(result_of(dt.date(2099, 6, 1)))
    backup = [i for i, c in enumerate(columns["initiator"]) if c == BACKUP]
    assert [columns["verdict"][i] for i in backup] == ["unexpected-source"] * 2
    assert [columns["rule"][i] for i in backup] == ["", ""]


def test_csv_and_json_by_suffix(result_of, tmp_path):
    result = result_of(dt.date(2025, 1, 1))
    rows = list(csv.DictReader(io.StringIO(render_flows(result, "x.csv"))))
    doc = json.loads(render_flows(result, "x.json"))
    assert len(rows) == len(doc["flows"]) == len(FLOWS)
    assert [r["rule"] for r in rows] == [f["rule"] for f in doc["flows"]]
    assert doc["decode"]["frames"] == result.traffic.packets
    for suffix in (".csv", ".json"):
        out = tmp_path / f"flows{suffix}"
        write_flows(result, str(out))
        assert out.read_text(encoding="utf-8") == render_flows(result, str(out))


def test_frames_name_the_file_when_several(result_of):
    columns = verdict_columns(result_of(dt.date(2025, 1, 1), files=3))
    assert all(":" in frames for frames in columns["frames"])
    assert columns["frames"][0] == "0:1 0:2 0:3"


def test_parquet(result_of, tmp_path):
    import pyarrow.parquet as pq

    result = result_of(dt.date(2025, 1, 1))
    out = tmp_path / "flows.parquet"
    write_flows(result, str(out))
    table = pq.read_table(out)
    assert table.column_names == [*COLUMNS, "verdict", "rule", "app", "app_details"]
    assert table.to_pydict() == verdict_columns(result)


def test_parquet_without_pyarrow_names_the_extra(result_of, tmp_path, monkeypatch):
    result = result_of(dt.date(2025, 1, 1))
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(PortmatrixError, match=r"pip install 'portmatrix\[parquet\]'"):
        write_flows(result, str(tmp_path / "flows.parquet"))


@pytest.mark.parametrize("name", ["flows.csv", "flows.parquet"])
def test_unwritable_export(result_of, tmp_path, name):
    result = result_of(dt.date(2025, 1, 1))
    out = tmp_path / "missing-dir" / name
    with pytest.raises(PortmatrixError) as caught:
        write_flows(result, str(out))
    assert (caught.value.file, caught.value.where) == (str(out), "--flows")
    assert "cannot write" in str(caught.value)
