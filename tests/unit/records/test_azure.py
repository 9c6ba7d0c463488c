"""Azure VNet flow logs and NSG flow logs: the tuple's source initiated, D is
blocked, counters both ways are an answer, and both NICs of a flow count once."""

from __future__ import annotations

import json

import pytest

from portmatrix.errors import CaptureError
from portmatrix.records.formats import detect, read_records
from support import flowlogs as fl

MS = 1_709_287_200_000


def vnet(tuples_by_mac: dict[str, list[str]]) -> dict:
    return {
        "records": [
            {
                "time": "2024-03-01T10:01:00.0000000Z",
                "flowLogVersion": 4,
                "macAddress": mac,
                "category": "FlowLogFlowEvent",
                "flowRecords": {
                    "flows": [{"aclID": "x", "flowGroups": [{"rule": "r", "flowTuples": tuples}]}]
                },
            }
            for mac, tuples in tuples_by_mac.items()
        ]
    }


def nsg(tuples: list[str], version: int = 2) -> dict:
    return {
        "records": [
            {
                "time": "2024-03-01T10:01:00.0000000Z",
                "macAddress": "000D3AF87856",
                "category": "NetworkSecurityGroupFlowEvent",
                "properties": {
                    "Version": version,
                    "flows": [
                        {"rule": "r", "flows": [{"mac": "000D3AF87856", "flowTuples": tuples}]}
                    ],
                },
            }
        ]
    }


def judged(tmp_path, doc: dict, name: str = "PT1H.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    assert detect(str(path)) == "azure"
    traffic = read_records([str(path)])
    return fl.judged_flows(traffic), traffic


def test_vnet_begin_continue_end_at_two_nics(tmp_path):
    flow = "10.0.0.6,10.0.1.4,50000,443,6,O"
    back = "10.0.0.6,10.0.1.4,50000,443,6,I"  # the same flow, inbound at the other NIC
    tuples = {
        "mac-a": [
            f"{MS},{flow},B,NX,,,,",
            f"{MS + 60000},{flow},C,NX,4,400,3,300",
            f"{MS + 90000},{flow},E,NX,2,120,1,60",
        ],
        "mac-b": [
            f"{MS},{back},B,NX,,,,",
            f"{MS + 60000},{back},C,NX,4,400,3,300",
            f"{MS + 90000},{back},E,NX,2,120,1,60",
        ],
    }
    got, traffic = judged(tmp_path, vnet(tuples))
    assert got == [("10.0.0.6", "10.0.1.4", 443, 6, 4, "established", "record")]
    assert traffic.captures[0].frames == 6 and traffic.flows["records"].tolist() == [6]
    assert any("Azure flow logs carry no TCP flags" in r for r in traffic.remarks)


def test_denied_unanswered_refused_and_a_server_port_as_source(tmp_path):
    tuples = {
        "mac-a": [
            f"{MS},10.0.0.6,10.0.1.4,50001,22,6,O,D,NX,0,0,0,0",  # denied
            f"{MS},10.0.0.6,10.0.1.4,50002,8080,6,O,E,NX,3,180,0,0",  # nothing back
            f"{MS},10.0.0.6,10.0.1.4,50003,5432,6,O,E,NX,1,60,1,40",  # SYN, RST
            f"{MS},10.0.0.6,10.0.1.4,443,50004,6,O,E,NX,5,500,4,400",  # the record says so
        ]
    }
    got, _ = judged(tmp_path, vnet(tuples))
    assert got == [
        ("10.0.0.6", "10.0.1.4", 22, 0, 0, "blocked", "record"),
        ("10.0.0.6", "10.0.1.4", 5432, 1, 1, "refused", "record"),
        ("10.0.0.6", "10.0.1.4", 8080, 3, 0, "unanswered", "record"),
        ("10.0.0.6", "10.0.1.4", 50004, 5, 4, "established", "record"),
    ]


def test_nsg_version_2_and_1(tmp_path):
    s = MS // 1000
    got, _ = judged(
        tmp_path,
        nsg(
            [
                f"{s},10.0.0.4,13.67.143.118,44931,443,T,O,A,B,,,,",
                f"{s + 60},10.0.0.4,13.67.143.118,44931,443,T,O,A,E,5,500,4,300",
                f"{s},10.0.0.4,10.0.0.9,40000,53,U,O,D,B,,,,",
            ]
        ),
    )
    assert got == [
        ("10.0.0.4", "10.0.0.9", 53, 0, 0, "blocked", "record"),
        ("10.0.0.4", "13.67.143.118", 443, 5, 4, "established", "record"),
    ]
    got, _ = judged(tmp_path, nsg([f"{s},10.0.0.4,10.0.0.5,40000,22,T,I,A"], version=1), "v1.json")
    assert got == [("10.0.0.4", "10.0.0.5", 22, 0, 0, "midstream", "record")]


def test_damaged_tuples_are_named_and_the_rest_is_read(tmp_path):
    tuples = {
        "mac-a": [
            f"{MS},10.0.0.6,10.0.1.4,50000,443,6,O,E,NX,2,100,1,50",
            "garbage",
            f"{MS},10.0.0.6,not-an-ip,1,2,6,O,E,NX,1,1,1,1",
        ]
    }
    got, traffic = judged(tmp_path, vnet(tuples))
    assert len(got) == 1
    (notice,) = traffic.captures[0].notices
    assert "2 line(s) are not flow records" in notice and "garbage" in notice
    assert "not-an-ip" in notice
    path = tmp_path / "bad.json"
    path.write_text('{"records": [{"category": "FlowLogFlowEvent", "flowRecords": ')
    with pytest.raises(CaptureError, match=r"bad\.json:line 1: not JSON"):
        read_records([str(path)], fmt="azure")
