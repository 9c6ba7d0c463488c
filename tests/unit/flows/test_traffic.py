"""Traffic: the flows of some inputs with what reports need besides them: the
decode buckets, each input's account of itself, and what the whole adds up to."""

from __future__ import annotations

import numpy as np

from portmatrix.decode.batch import DecodeCounts
from portmatrix.flows.filters import FlowFilter
from portmatrix.flows.model import Flows
from portmatrix.flows.records import ACK, SYN
from portmatrix.flows.traffic import Traffic
from portmatrix.sources.base import CaptureInfo, InterfaceStats

SECOND = 1_000_000_000


def traffic(**cols) -> Traffic:
    base = {
        "proto": [6, 6, 17, 6],
        "resp_port": [22, 443, 53, 80],
        "first_ts": [5 * SECOND, 1 * SECOND, 9 * SECOND, 3 * SECOND],
        "last_ts": [6 * SECOND, 2 * SECOND, 12 * SECOND, 4 * SECOND],
        "pkts_fwd": [3, 2, 1, 4],
        "pkts_rev": [3, 0, 1, 0],
        "flags_fwd": [SYN | ACK, ACK, 0, SYN],  # the second: one way, yet acknowledging
    }
    flows = Flows.from_columns({**base, **cols})
    flows.fragments_unresolved = 2
    caps = [
        CaptureInfo("a.pcap", dns={"db.example": [7, 3]}),
        CaptureInfo(
            "b.pcapng",
            dns={"db.example": [3, 9], "web.example": [1]},
            stats={0: InterfaceStats(0, dropped=5, os_dropped=1), 1: InterfaceStats(1)},
        ),
    ]
    return Traffic(flows=flows, counts=DecodeCounts(frames=40, ip=38), captures=caps)


def test_totals_over_flows_and_inputs():
    t = traffic()
    assert (t.flow_count, t.packets, t.drops) == (4, 40, 6)
    assert (t.tcp_flows, t.tcp_one_way, t.fragments_unresolved) == (3, 1, 2)
    assert (t.first_ts, t.last_ts) == (1 * SECOND, 12 * SECOND)


def test_hostnames_learned_by_any_input_are_merged():
    assert traffic().dns_names == {"db.example": [3, 7, 9], "web.example": [1]}


def test_no_flows_no_window():
    t = traffic()
    empty = Traffic(flows=t.flows.take(np.zeros(4, bool)), counts=t.counts)
    assert (empty.first_ts, empty.last_ts, empty.tcp_flows, empty.drops) == (None, None, 0, 0)
    assert empty.dns_names == {}


def test_narrowed_keeps_the_flows_a_filter_keeps_and_remembers_it():
    t = traffic()
    assert t.narrowed(FlowFilter()) is t  # nothing asked: the same traffic
    ports = FlowFilter(ports=(22, 53))
    narrow = t.narrowed(ports)
    assert narrow.flows["resp_port"].tolist() == [22, 53]
    assert narrow.filters is ports and t.filters is None
    assert narrow.counts is t.counts and narrow.captures is t.captures  # the inputs' account
    # A relative window counts from the first packet of the whole traffic, not the
    # narrowed flows'.
    late = t.narrowed(FlowFilter(since="+4s"))
    assert late.flows["resp_port"].tolist() == [22, 53]
