"""What every report says about its inputs: the decode buckets by name (they add
up to the frames) and each capture's account of itself."""

from __future__ import annotations

import pytest

from portmatrix.decode.batch import DecodeCounts
from portmatrix.flows.traffic import Traffic
from portmatrix.report.summary import decode_document, decode_summary, inputs_summary, made_by
from portmatrix.sources.base import CaptureInfo, Interface, InterfaceStats
from portmatrix.testing.captures import flows_of

COUNTS = DecodeCounts(  # adds up: 10 + 8 + 2 + 1
    frames=21,
    ip=10,
    non_ip={0x88CC: 2, 0x0806: 3, -1: 1, -0xC021: 1, 0x1234: 1},
    unsupported={147: 1, 9999: 1},
    undecodable={"link header cut short": 1},
    l4_truncated=4,
    inner_undecodable=2,
)


def test_decode_document_names_types_and_links():
    COUNTS.check()
    doc = decode_document(COUNTS)
    assert (doc["frames"], doc["ip"]) == (21, 10)
    assert doc["non_ip"] == {
        "PPP 0xc021": 1,
        "LLC/802.3": 1,
        "ARP": 3,
        "0x1234": 1,
        "LLDP": 2,
    }
    assert list(doc["non_ip"]) == ["PPP 0xc021", "LLC/802.3", "ARP", "0x1234", "LLDP"]  # by value
    assert doc["unsupported_link_type"] == {"147 USER0": 1, "9999": 1}
    assert doc["undecodable"] == {"link header cut short": 1}
    assert (doc["tcp_flags_cut_by_snaplen"], doc["tunnelled_undecodable"]) == (4, 2)
    buckets = ("non_ip", "unsupported_link_type", "undecodable")
    assert doc["ip"] + sum(sum(doc[k].values()) for k in buckets) == doc["frames"]


def test_decode_summary_lines():
    assert decode_summary(COUNTS)[:4] == [
        "decoded IP: 10",
        "non-IP: 8 (PPP 0xc021 1, LLC/802.3 1, ARP 3, 0x1234 1, LLDP 2)",
        "unsupported link type: 2 (147 USER0 1, 9999 1)",
        "undecodable: 1 (link header cut short 1)",
    ]
    assert decode_summary(DecodeCounts(frames=3, ip=3))[:4] == [
        "decoded IP: 3",
        "non-IP: 0",
        "unsupported link type: 0",
        "undecodable: 0",
    ]


def test_inputs_summary_one_entry_per_capture():
    caps = [
        CaptureInfo(
            "a.pcapng",
            format="pcapng+gzip",
            frames=7,
            size=900,
            sha256="ab" * 32,
            interfaces=[Interface(1, "eth0"), Interface(113, "any")],
            stats={0: InterfaceStats(0, dropped=2, os_dropped=1)},
            dns={"db.example": [1], "web.example": [2]},
            truncated="file cut short in the middle of record 8",
        ),
        CaptureInfo("-", format="pcap", frames=3),
    ]
    traffic = Traffic(flows=flows_of([]), counts=DecodeCounts(), captures=caps)
    first, second = inputs_summary(traffic)
    assert first == {
        "path": "a.pcapng",
        "format": "pcapng+gzip",
        "size": 900,
        "sha256": "ab" * 32,
        "frames": 7,
        "truncated": "file cut short in the middle of record 8",
        "unreadable": None,
        "drops": 3,
        "dns_names": 2,
        "client_names": {"seen": {}, "damaged": {}, "cut": {}},
        "interfaces": [{"name": "eth0", "link_type": 1}, {"name": "any", "link_type": 113}],
    }
    assert (second["path"], second["size"], second["truncated"], second["drops"]) == (
        "-",
        None,
        None,  # not cut short: null, not ""
        0,
    )
    assert second["interfaces"] == []


@pytest.mark.parametrize(
    ("command", "made"),
    [
        (["portmatrix", "watch", "-i", "eth1"], "watch"),
        (["portmatrix", "--traceback", "watch", "-i", "eth1"], "watch"),
        (["portmatrix", "check", "watch.pcap"], "check"),
        (None, "check"),  # a report not made by the command line
    ],
)
def test_a_report_says_which_command_made_it(command, made):
    assert made_by({"report": {"command": command}}) == made
