"""The compiled fast path for common frames against the numpy decoder (the reference).

Both must give the very same rows (every column, dtype and order) and the same
decode buckets, on real captures and on damaged frames; and the fast path must
really take the frames it is meant for, or the comparison proves nothing.
"""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, LLC, Dot3, Ether

from portmatrix.decode import common, decode
from portmatrix.decode.ethertype import LAYERS, VLAN_TAGS
from portmatrix.sources.capture import Capture
from portmatrix.testing.captures import MAC_A, MAC_B, ether, raw_batch
from support import encapsulated as enc
from support.decoders import assert_same
from support.paths import REPO

CAPTURES = sorted(
    p
    for p in [
        *(REPO.parent / "shared" / "pcaps").glob("*.pcap*"),
        *(REPO / "captures").glob("*.pcap*"),
    ]
    if "invalid-version" not in p.name  # a pcap header nothing reads
)

pytestmark = pytest.mark.skipif(
    not common.available() and not os.environ.get("CI"), reason="built without a C compiler"
)


def test_built_where_ci_runs():
    assert common.available(), "the C extension portmatrix.decode._common was not built"


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_same_rows_as_numpy_on_real_captures(path):
    for raw in Capture(str(path)).batches():
        assert_same(raw)


COMMON = [
    ether(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000, dport=443, flags="S", seq=7)),
    ether(IP(src="10.0.0.2", dst="10.0.0.1") / TCP(sport=443, dport=1000, flags="SA")),
    ether(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5353, dport=53), vlans=[7, 8]),
    ether(IPv6(src="fd00::1", dst="fd00::2") / TCP(sport=1, dport=2, flags="PA")),
    ether(IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8, id=99)),
    ether(IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=0, id=99)),
    ether(IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=13, id=5)),
    ether(IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=9)),  # router advertisement
    ether(IPv6(src="fd00::1", dst="fd00::2") / ICMPv6EchoRequest(id=3)),
    ether(IPv6(src="fd00::2", dst="fd00::1") / ICMPv6EchoReply(id=3)),
    Ether(src=MAC_A, dst=MAC_B) / ARP(),
    Dot3(src=MAC_A, dst=MAC_B) / LLC(),
]


def test_the_fast_path_takes_the_common_frames():
    raw = raw_batch(COMMON)
    rows, non_ip, rest = common.split(raw)
    assert rest.tolist() == []
    assert len(rows) == len(COMMON) - 2
    assert non_ip == {0x0806: 1, -1: 1}
    assert_same(raw)


def test_the_fast_path_leaves_the_rest_to_numpy():
    inner = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2, flags="S")
    probe = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=3, dport=4)
    rare = [
        ether(IP(src="10.0.0.1", dst="10.0.0.2", flags="MF") / UDP() / (b"x" * 40)),
        ether(IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=3, code=3) / bytes(probe)),
        ether(IP(src="1.1.1.1", dst="2.2.2.2", proto=4) / inner),
        ether(IP(src="1.1.1.1", dst="2.2.2.2") / UDP(dport=4789) / (b"\x08" + b"\0" * 7)),
        bytes(ether(inner))[:40],  # TCP cut before its flags
        ether(IP(src="10.0.0.1", dst="10.0.0.2", proto=132) / (b"\0" * 12)),
    ]
    raw = raw_batch(COMMON[:2] + rare + COMMON[2:4])
    _, _, rest = common.split(raw)
    assert rest.tolist() == list(range(2, 2 + len(rare)))
    assert_same(raw)


SEEDS = [bytes(p) for p in COMMON]
LINK_TYPES = (1, 1, 1, 101, 113, 276, 228, 229, 0, 147)


@st.composite
def damaged(draw) -> bytes:
    frame = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(frame) - 1))
        frame[at] = draw(st.integers(0, 255))
    return bytes(frame[: draw(st.integers(0, len(frame)))])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(damaged(), st.sampled_from(LINK_TYPES)), min_size=1, max_size=10))
def test_same_rows_as_numpy_on_damaged_frames(cases):
    assert_same(raw_batch([f for f, _ in cases], [lt for _, lt in cases]))


# Every link type and encapsulation of tests/support/encapsulated.py, damaged.

V4 = IP(src="192.0.2.1", dst="198.51.100.2") / UDP(sport=5353, dport=53) / b"query"


@pytest.mark.parametrize("name", sorted(enc.WRAPS))
def test_cut_short_at_every_length(name):
    linktype, frames = enc.frames(name)
    cut = [f[:n] for f in frames[:3] + frames[-1:] for n in range(len(f) + 1)]
    raw = raw_batch(cut, linktype)
    rows, counts = decode(raw)
    counts.check()
    assert counts.frames == len(cut)
    # Only whole frames (and ones cut inside their payload) give rows; the others
    # are counted as cut short.
    assert counts.ip <= len(cut) and len(rows) >= 4
    assert set(counts.undecodable) <= {
        "link header cut short",
        "IP header cut short",
        "transport ports cut short",
        "MPLS payload not IP or Ethernet",
    }
    assert_same(raw)


WRAPPED = [(lt, f) for lt, w in enc.WRAPS.values() for f in [w(V4)]]


@st.composite
def damaged_wrapped(draw):
    linktype, frame = draw(st.sampled_from(WRAPPED))
    frame = bytearray(frame)
    for _ in range(draw(st.integers(0, 4))):
        frame[draw(st.integers(0, len(frame) - 1))] = draw(st.integers(0, 255))
    return bytes(frame[: draw(st.integers(0, len(frame)))]), linktype


@settings(max_examples=300, deadline=None)
@given(st.lists(damaged_wrapped(), min_size=1, max_size=12))
def test_damaged_frames_never_raise_and_both_decoders_agree(cases):
    raw = raw_batch([f for f, _ in cases], [lt for _, lt in cases])
    _, counts = decode(raw)
    counts.check()
    assert_same(raw)


def test_the_fast_path_leaves_every_table_layer_to_numpy():
    """_common.c's list of layers equals ethertype.LAYERS (bar the VLAN tags it reads)."""
    if not common.available():
        pytest.skip("built without a C compiler")
    frames = [
        struct.pack(">6s6sH", b"\2" * 6, b"\4" * 6, t) + bytes(V4)
        for t in LAYERS
        if t not in VLAN_TAGS
    ]
    _, non_ip, rest = common.split(raw_batch(frames))
    assert non_ip == {} and rest.tolist() == list(range(len(frames)))
