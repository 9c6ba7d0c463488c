"""Flows as export rows: column names and order, and how each field is written."""

from __future__ import annotations

import re

import numpy as np
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import GRE
from scapy.layers.sctp import SCTP

from portmatrix.report import flow_rows
from portmatrix.report.flow_rows import COLUMNS, flow_columns, rows
from portmatrix.testing.captures import T0, Frame, ether, flows_of
from portmatrix.textforms import address_texts, iso

# The columns the issue names, in its order; later columns may follow.
ISSUE_COLUMNS = [
    "proto",
    "initiator",
    "initiator_port",
    "responder",
    "responder_port",
    "first_seen",
    "last_seen",
    "packets_fwd",
    "packets_rev",
    "bytes_fwd",
    "bytes_rev",
    "outcome",
    "close",
    "initiator_by",
    "vlan",
    "icmp_error",
]


def documented_columns() -> list[str]:
    """The column names listed in flow_rows' docstring, in order."""
    text = flow_rows.__doc__.split("Columns, in order", 1)[1]
    return re.findall(r"^  (\w+)", text, flags=re.MULTILINE)


def test_columns_are_the_documented_ones():
    assert list(COLUMNS) == documented_columns()
    assert list(COLUMNS[: len(ISSUE_COLUMNS)]) == ISSUE_COLUMNS


def at(pkt, us: int = 0, vlans=()):
    return Frame(bytes(ether(pkt, vlans=vlans)), ts=T0 + us * 1000)


def test_fields_are_written_as_documented():
    probe = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=50000, dport=53)
    packets = [
        Frame(
            bytes(ether(IP(src="10.0.0.9", dst="10.0.0.8") / TCP(sport=1, dport=2, flags="S"))),
            ts=T0 + 123_456_789,
        ),
        at(probe, 1_000_000, vlans=[20]),
        at(probe, 1_000_001, vlans=[10]),
        at(
            IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=3, code=3) / IPerror(bytes(probe)[:28]),
            1_000_002,
        ),
        at(IP(src="10.0.0.1", dst="10.0.0.3") / ICMP(type=8, id=5), 2_000_000),
        at(IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMPv6EchoRequest(id=6), 3_000_000),
        at(IP(src="10.0.0.1", dst="10.0.0.4") / SCTP(sport=50000, dport=2905), 4_000_000),
        at(
            IP(src="10.0.0.1", dst="10.0.0.5")
            / GRE()
            / IP(src="1.1.1.1", dst="2.2.2.2")
            / UDP(sport=7, dport=8),
            5_000_000,
        ),
    ]
    got = rows(flow_columns(flows_of(packets)))
    assert [list(r) for r in got] == [list(COLUMNS)] * len(got)
    # Ordered by first packet; the outer and inner flows of one frame in either order.
    tcp, udp, icmp, icmpv6, sctp = got[:5]
    gre, inner = sorted(got[5:], key=lambda r: r["encap"])

    assert tcp["first_seen"] == tcp["last_seen"] == "2023-11-14T22:13:20.123456Z"  # µs, cut
    assert (tcp["proto"], tcp["close"], tcp["vlan"], tcp["icmp_error"]) == ("tcp", "open", "", "")

    assert (udp["proto"], udp["initiator"], udp["responder"]) == ("udp", "10.0.0.1", "10.0.0.2")
    assert (udp["initiator_port"], udp["responder_port"]) == (50000, 53)
    assert (udp["vlan"], udp["icmp_error"], udp["outcome"]) == ("10,20", "3/3", "refused")
    assert (udp["packets_fwd"], udp["packets_rev"]) == (2, 0)
    assert udp["last_seen"] == "2023-11-14T22:13:21.000002Z"
    assert udp["frames"] == "2 3 4"  # the ICMP error is among the frames, not the packets

    # ICMP: the type that opens the exchange stands in the initiator port, 0 in the other.
    assert (icmp["proto"], icmp["initiator_port"], icmp["responder_port"]) == ("icmp", 8, 0)
    assert (icmpv6["proto"], icmpv6["initiator_port"], icmpv6["responder"]) == (
        "icmpv6",
        128,
        "2001:db8::2",
    )
    assert (sctp["proto"], sctp["responder_port"], sctp["close"]) == ("sctp", 2905, "")
    assert (gre["proto"], gre["encap"], inner["encap"]) == ("47", "", "gre")
    assert all(isinstance(r["packets_fwd"], int) and isinstance(r["bytes_rev"], int) for r in got)


def test_frames_name_the_file_when_several_were_read():
    flows = flows_of([at(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2))] * 4)
    assert flow_columns(flows)["frames"] == ["1 2 3"]
    assert flow_columns(flows, several_files=True)["frames"] == ["0:1 0:2 0:3"]


def test_iso_timestamps():
    ts = np.array([0, 1_999, 1_700_000_000_123_456_789], dtype=np.int64)
    assert iso(ts).tolist() == [
        "1970-01-01T00:00:00.000000Z",
        "1970-01-01T00:00:00.000001Z",
        "2023-11-14T22:13:20.123456Z",
    ]


def test_address_texts_keep_row_order():
    hi = np.array([0, 0, 0x20010DB8 << 32, 0], dtype=np.uint64)
    lo = np.array([0xFFFF0A000002, 0xFFFF0A000001, 1, 0xFFFF0A000002], dtype=np.uint64)
    assert address_texts(hi, lo) == ["10.0.0.2", "10.0.0.1", "2001:db8::1", "10.0.0.2"]
    assert address_texts(np.zeros(0, np.uint64), np.zeros(0, np.uint64)) == []


def test_no_flows():
    columns = flow_columns(flows_of([]))
    assert list(columns) == list(COLUMNS)
    assert all(v == [] for v in columns.values())
    assert rows(columns) == []
