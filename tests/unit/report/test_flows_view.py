"""`portmatrix flows` formats: every registered format renders the same flows;
the table ends with the decode buckets and the notices, JSON includes them."""

from __future__ import annotations

import csv
import io
import json

import pytest
from scapy.contrib.lldp import LLDPDUChassisID, LLDPDUEndOfLLDPDU, LLDPDUPortID, LLDPDUTimeToLive
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether

from portmatrix.flows.from_captures import read_traffic
from portmatrix.report.flow_rows import COLUMNS, flow_columns
from portmatrix.report.flows_view import FORMATS
from portmatrix.testing.captures import (
    MAC_A,
    MAC_B,
    cut,
    ether,
    pcap_record_offsets,
    tcp_session,
    write_pcap,
)


@pytest.fixture
def traffic(tmp_path):
    """Two flows, an ARP and an LLDP frame, a cut-short frame, and a file cut mid-record."""
    lldp = (
        Ether(src=MAC_A, dst="01:80:c2:00:00:0e")
        / LLDPDUChassisID(subtype=4, id=MAC_A)
        / LLDPDUPortID(subtype=5, id=b"p1")
        / LLDPDUTimeToLive(ttl=120)
        / LLDPDUEndOfLLDPDU()
    )
    frames = [
        *[ether(p) for p in tcp_session("10.0.0.1", "10.0.0.2", 40000, 22)],
        ether(IP(src="10.0.0.1", dst="10.0.0.3") / UDP(sport=5000, dport=53) / b"q"),
        Ether(src=MAC_A, dst=MAC_B) / ARP(),
        lldp,
        bytes(ether(IP(src="10.0.0.1", dst="10.0.0.2") / UDP()))[:24],
        ether(IP(src="10.0.0.1", dst="10.0.0.2") / UDP()),  # lost: the file is cut inside it
    ]
    path = write_pcap(tmp_path / "mixed.pcap", frames)
    cut(path, pcap_record_offsets(path.read_bytes())[-1] + 10)
    return read_traffic([str(path)])


def render(fmt, traffic):
    return FORMATS[fmt](flow_columns(traffic.flows), traffic)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_renders(fmt, traffic):
    text = render(fmt, traffic)
    assert text.endswith("\n")
    assert "10.0.0.3" in text and "10.0.0.2" in text


def test_table_ends_with_the_buckets_and_notices(traffic):
    lines = render("table", traffic).splitlines()
    assert lines[0].split() == [
        "proto",
        "initiator",
        "port",
        "responder",
        "port",
        "pkts>",
        "pkts<",
        "outcome",
        "by",
    ]
    assert lines[1].split()[:5] == ["tcp", "10.0.0.1", "40000", "10.0.0.2", "22"]
    assert lines[2].split()[:5] == ["udp", "10.0.0.1", "5000", "10.0.0.3", "53"]
    assert lines[3] == ""
    assert lines[4:9] == [
        "2 flows from 12 frames in 1 file(s)",
        "  decoded IP: 9",
        "  non-IP: 2 (ARP 1, LLDP 1)",
        "  unsupported link type: 0",
        "  undecodable: 1 (IP header cut short 1)",
    ]
    assert (
        lines[9].startswith("notice: ") and "file cut short in the middle of record 13" in lines[9]
    )
    assert len(lines) == 10


def test_csv_header_is_the_column_list_and_rows_round_trip(traffic):
    text = render("csv", traffic)
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == list(COLUMNS)
    columns = flow_columns(traffic.flows)
    assert table[1:] == [[str(v) for v in row] for row in zip(*columns.values(), strict=True)]


def test_json_includes_flows_buckets_inputs_and_notices(traffic):
    doc = json.loads(render("json", traffic))
    assert set(doc) == {"inputs", "flows", "decode", "notices", "filters"}
    assert doc["filters"] == {}  # none asked for
    assert [set(f) for f in doc["flows"]] == [set(COLUMNS)] * 2
    assert doc["flows"][0]["packets_fwd"] == 5
    assert doc["decode"]["frames"] == 12 and doc["decode"]["ip"] == 9
    assert doc["decode"]["non_ip"] == {"ARP": 1, "LLDP": 1}
    assert doc["decode"]["undecodable"] == {"IP header cut short": 1}
    (inp,) = doc["inputs"]
    assert inp["format"] == "pcap" and inp["frames"] == 12
    assert "record 13" in inp["truncated"]
    assert len(doc["notices"]) == 1


def test_jsonl_is_one_flow_per_line(traffic):
    lines = render("jsonl", traffic).splitlines()
    events = [json.loads(line) for line in lines]
    assert [set(e["portmatrix"]) for e in events] == [set(COLUMNS)] * 2  # every column
    assert all(e["event"]["dataset"] == "portmatrix.flows" for e in events)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_no_flows(fmt, tmp_path):
    path = write_pcap(tmp_path / "arp.pcap", [Ether(src=MAC_A, dst=MAC_B) / ARP()])
    text = render(fmt, read_traffic([str(path)]))
    if fmt == "csv":
        assert text == ",".join(COLUMNS) + "\n"
    elif fmt == "jsonl":
        assert text == ""
    elif fmt == "json":
        assert json.loads(text)["flows"] == []
    else:
        assert "0 flows from 1 frames in 1 file(s)" in text
