"""Flow tables merge associatively: a packet sequence cut into parts at arbitrary
points, each part built into its own table, and the tables merged in order (in
any grouping) give exactly the table of the whole sequence. Feeding the parts
to one table batch by batch gives it too."""

from __future__ import annotations

import copy
from functools import cache
from itertools import pairwise

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror
from scapy.layers.inet6 import IPv6

from portmatrix.decode import decode
from portmatrix.flows.model import Flows
from portmatrix.flows.table import FlowTable
from portmatrix.testing.captures import ether, raw_batch

# A few 5-tuples: (proto, client, server, client port, server port).
TUPLES = (
    ("tcp", "10.0.0.1", "10.0.0.2", 40000, 80),
    ("tcp", "10.0.0.3", "10.0.0.2", 40001, 22),
    ("tcp", "2001:db8::1", "2001:db8::2", 50000, 443),
    ("udp", "10.0.0.1", "10.0.0.2", 50000, 53),
    ("udp", "10.0.0.5", "10.0.0.6", 123, 123),
    ("icmp", "10.0.0.1", "10.0.0.9", 7, 7),
)
TCP_FLAGS = ("S", "SA", "A", "PA", "FA", "R", "RA", "S", "icmp-error")
ISNS = (1000, 2000, 3000)  # a new SYN picks one: the same ISN again, or a new one


def ip(src, dst):
    return IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)


@cache
def packet(event: tuple[int, int, bool, int]) -> bytes:
    """The frame of one event: (5-tuple, what, sent by the server?, ISN choice)."""
    index, what, from_server, isn = event
    proto, client, server, cport, sport = TUPLES[index]
    src, dst, a, b = (
        (server, client, sport, cport) if from_server else (client, server, cport, sport)
    )
    if proto == "tcp":
        flags = TCP_FLAGS[what % len(TCP_FLAGS)]
        if flags == "icmp-error" and ":" not in client:
            syn = IP(src=client, dst=server) / TCP(sport=cport, dport=sport, flags="S")
            return bytes(
                ether(IP(src=server, dst=client) / ICMP(type=3, code=13) / IPerror(bytes(syn)[:28]))
            )
        flags = "S" if flags == "icmp-error" else flags
        seq = ISNS[isn] + (7 if from_server else 0)
        return bytes(ether(ip(src, dst) / TCP(sport=a, dport=b, flags=flags, seq=seq)))
    if proto == "udp":
        if what % 4 == 3:  # the server says the port is closed
            probe = IP(src=client, dst=server) / UDP(sport=cport, dport=sport)
            return bytes(
                ether(
                    IP(src=server, dst=client) / ICMP(type=3, code=3) / IPerror(bytes(probe)[:28])
                )
            )
        return bytes(ether(ip(src, dst) / UDP(sport=a, dport=b) / (b"u" * what)))
    return bytes(
        ether(IP(src=src, dst=dst) / ICMP(type=0 if from_server else 8, id=cport, seq=what))
    )


events = st.lists(
    st.tuples(
        # Half the packets on one 5-tuple, so that connections on it interact.
        st.one_of(st.just(0), st.integers(0, len(TUPLES) - 1)),
        st.integers(0, 11),
        st.booleans(),
        st.one_of(st.just(0), st.integers(0, len(ISNS) - 1)),
    ),
    min_size=1,
    max_size=40,
)


def decoded(evts):
    rows, counts = decode(raw_batch([packet(e) for e in evts]))
    counts.check()
    return rows


def table_of(rows) -> FlowTable:
    table = FlowTable()
    table.update(rows)
    return table


def canonical(flows: Flows) -> list[tuple]:
    names = sorted(flows.cols)
    return sorted(zip(*(flows.cols[k].tolist() for k in names), strict=True))


def cut_points(data, n: int) -> list[int]:
    cuts = data.draw(st.lists(st.integers(0, n), max_size=5), label="cuts")
    return [0, *sorted(cuts), n]


def grouped(data, parts: list, lo: int, hi: int) -> FlowTable:
    """Merge parts[lo:hi] in order, grouped by a drawn binary tree."""
    if hi - lo == 1:
        return table_of(parts[lo])
    mid = data.draw(st.integers(lo + 1, hi - 1), label="split")
    left = grouped(data, parts, lo, mid)
    left.merge(grouped(data, parts, mid, hi))
    return left


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evts=events, data=st.data())
def test_split_merge_equals_whole(evts, data):
    rows = decoded(evts)
    n = len(rows)
    whole = table_of(rows).finish()
    expect = canonical(whole)
    bounds = cut_points(data, n)
    parts = [rows.take(np.arange(a, b)) for a, b in pairwise(bounds)]

    # Left fold: ((a + b) + c) + d
    tables = [table_of(p) for p in parts]
    left = copy.deepcopy(tables[0])
    for t in tables[1:]:
        left.merge(copy.deepcopy(t))
    assert canonical(left.finish()) == expect

    # Right-nested: a + (b + (c + d)); merge mutates, so work on copies.
    right = copy.deepcopy(tables[-1])
    for t in reversed(tables[:-1]):
        outer = copy.deepcopy(t)
        outer.merge(right)
        right = outer
    assert canonical(right.finish()) == expect

    # Any grouping.
    assert canonical(grouped(data, parts, 0, len(parts)).finish()) == expect

    # One table fed batch by batch.
    fed = FlowTable()
    for p in parts:
        fed.update(p)
    assert canonical(fed.finish()) == expect
    assert whole.fragments_unresolved == 0


@settings(max_examples=50, deadline=None)
@given(evts=events)
def test_finish_does_not_depend_on_how_often_it_runs(evts):
    table = table_of(decoded(evts))
    first = canonical(table.finish())
    assert canonical(table.finish()) == first
