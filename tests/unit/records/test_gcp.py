"""GCP VPC Flow Logs: one direction per record, reported by either side;
sampled, so every initiator is a guess from the ports."""

from __future__ import annotations

import json

from portmatrix.records.formats import detect, read_records
from support import flowlogs as fl
from support.flowlogs import judged_flows

T = 1_709_287_200 * 10**9


def recs():
    """A connection between two logged VMs: each direction reported by both."""
    out = []
    for reporter, vm in (("SRC", "vm-a"), ("DEST", "vm-b")):
        fwd = fl.Rec("10.128.0.2", "10.128.0.3", 40000, 443, 6, 5, 500, T, T + 10**9, 0, True, vm)
        rev = fl.Rec("10.128.0.3", "10.128.0.2", 443, 40000, 6, 4, 400, T, T + 10**9, 0, False, vm)
        out += [(fwd, reporter), (rev, "DEST" if reporter == "SRC" else "SRC")]
    return out


def test_both_reporters_count_once_and_ports_decide(tmp_path):
    lines = [json.dumps(fl.gcp_entry(r, reporter)) for r, reporter in recs()]
    path = tmp_path / "vpc_flows.json"
    path.write_text("\n".join(lines) + "\n")
    assert detect(str(path)) == "gcp"
    traffic = read_records([str(path)])
    assert judged_flows(traffic) == [("10.128.0.2", "10.128.0.3", 443, 5, 4, "established", "port")]
    assert traffic.weakened and any("sampled" in r for r in traffic.remarks)
    # The same entries as a JSON array (gcloud logging read --format=json).
    array = tmp_path / "array.json"
    array.write_text(json.dumps([fl.gcp_entry(r, rep) for r, rep in recs()], indent=1))
    assert judged_flows(read_records([str(array)])) == fl.judged_flows(traffic)


def test_one_way_is_not_unanswered_and_damaged_lines_are_named(tmp_path):
    one_way = fl.Rec("10.128.0.2", "10.128.0.9", 40000, 8080, 6, 3, 180, T, T, 0, True, "vm-a")
    lines = [json.dumps(fl.gcp_entry(one_way)), "{not json", json.dumps({"jsonPayload": {}})]
    path = tmp_path / "f.json"
    path.write_text("\n".join(lines) + "\n")
    traffic = read_records([str(path)])
    assert judged_flows(traffic) == [("10.128.0.2", "10.128.0.9", 8080, 3, 0, "midstream", "port")]
    (notice,) = traffic.captures[0].notices
    assert "line 2: not JSON" in notice and "no connection 5-tuple" in notice
