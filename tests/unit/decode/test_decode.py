"""decode(): link -> IP -> transport -> tunnels over a whole batch. Rows come in
frame order (a tunnelled frame's outer and inner packets side by side) whether
the compiled fast path or numpy decoded them, tunnels stop at MAX_DEPTH, and
every frame lands in one bucket."""

from __future__ import annotations

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror
from scapy.layers.l2 import ARP, Ether

from portmatrix.decode import MAX_DEPTH, common, decode
from portmatrix.decode import batch as b
from portmatrix.testing.captures import MAC_A, MAC_B, ether, ip, packet_rows, raw_batch

A, B = "10.0.0.1", "10.0.0.2"


def tunnelled(depth: int):
    """A TCP SYN inside `depth` IP-in-IP tunnels."""
    pkt = IP(src="10.9.0.1", dst="10.9.0.2") / TCP(sport=33000, dport=22, flags="S")
    for level in range(depth):
        pkt = IP(src=f"203.0.113.{level + 1}", dst="198.51.100.1") / pkt
    return ether(pkt)


MIXED = [
    ether(ip(A, B) / UDP(sport=1000, dport=53)),  # common: the fast path's
    tunnelled(1),  # a tunnel: numpy's
    Ether(src=MAC_A, dst=MAC_B) / ARP(),  # non-IP
    ether(ip(A, B) / TCP(sport=1001, dport=80, flags="S"), vlans=[7]),
    bytes(ether(ip(A, B) / UDP()))[:20],  # IP header cut short
    ether(ip("fd00::1", "fd00::2") / UDP(sport=1002, dport=53)),
    tunnelled(2),
]


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "numpy"])
def test_rows_in_frame_order_with_tunnels_side_by_side(fast):
    rows, counts = decode(raw_batch(MIXED), fast=fast)
    counts.check()
    got = [(r["frame"], b.ENCAPS[r["encap"]], r["proto"]) for r in packet_rows(rows)]
    assert got == [
        (1, "", 17),
        (2, "", 4),
        (2, "ipip", 6),
        (4, "", 6),
        (6, "", 17),
        (7, "", 4),
        (7, "ipip", 4),
        (7, "ipip", 6),
    ]
    assert (counts.frames, counts.ip, counts.non_ip) == (7, 5, {0x0806: 1})
    assert counts.undecodable == {"IP header cut short": 1}
    assert rows.vlan.tolist() == [-1, -1, -1, 7, -1, -1, -1, -1]


def test_rows_keep_the_frames_time_length_and_interface():
    raw = raw_batch([tunnelled(1), ether(ip(A, B) / UDP())], start=5_000, step=7)
    raw.iface[:] = [3, 4]
    rows, _ = decode(raw)
    assert rows.ts.tolist() == [5_000, 5_000, 5_007]
    assert rows.iface.tolist() == [3, 3, 4]
    assert rows.wirelen.tolist() == [len(tunnelled(1))] * 2 + [len(ether(ip(A, B) / UDP()))]


def test_tunnels_are_followed_to_max_depth_and_no_further():
    rows, _ = decode(raw_batch([tunnelled(MAX_DEPTH + 2)]))
    assert len(rows) == MAX_DEPTH + 1  # the outer packet and MAX_DEPTH inner ones
    assert rows.proto.tolist() == [4] * (MAX_DEPTH + 1)  # the SYN at the bottom is not reached
    rows, counts = decode(raw_batch([tunnelled(MAX_DEPTH)]))
    assert len(rows) == MAX_DEPTH + 1 and rows.proto.tolist()[-1] == 6
    assert counts.inner_undecodable == 0


def test_an_icmp_error_is_a_row_of_the_flow_it_quotes():
    probe = ip(A, B) / UDP(sport=40000, dport=161) / b"x"
    error = ip(B, A) / ICMP(type=3, code=3) / IPerror(bytes(probe)[:28])
    rows = packet_rows(decode(raw_batch([ether(probe), ether(error)]))[0])
    p, e = rows
    assert e["kind"] == b.ICMP_ERROR and p["kind"] == b.PACKET
    assert (e["src"], e["dst"], e["proto"], e["sport"], e["dport"]) == (A, B, 17, 40000, 161)
    assert (e["icmp_type"], e["icmp_code"]) == (3, 3)  # what the error said stays


def test_an_empty_batch():
    rows, counts = decode(raw_batch([]))
    assert len(rows) == 0 and counts.frames == 0
    counts.check()


def test_the_fast_path_leaves_the_uncommon_frames_to_numpy():
    if not common.available():
        pytest.skip("the compiled fast path was not built (test_common fails in CI then)")
    raw = raw_batch(MIXED)
    rows, _, rest = common.split(raw)
    assert 0 < len(rest) < len(raw)  # some frames for each path
    assert set(raw.frame[rest].tolist()) >= {2, 7}  # tunnels are numpy's
    assert np.isin(rows.frame, raw.frame[rest]).sum() == 0
