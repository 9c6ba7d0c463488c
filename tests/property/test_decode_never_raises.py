"""The decoder never raises on damaged packets: it counts them. Random bytes and
valid packets with random bytes overwritten, under every link type we decode."""

from __future__ import annotations

from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import GRE
from scapy.layers.vxlan import VXLAN

from portmatrix.decode import decode
from portmatrix.decode.link import LINKS
from portmatrix.testing.captures import MAC_A, MAC_B, ether, raw_batch

LINK_TYPES = (*sorted(LINKS), 147)  # every link type decoded, and one that is not


@cache
def seeds() -> list[bytes]:
    from scapy.layers.l2 import Ether

    inner = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2, flags="S")
    probe = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=3, dport=4)
    return [
        bytes(ether(inner, vlans=[1, 2])),
        bytes(ether(IP(src="1.1.1.1", dst="2.2.2.2") / GRE() / inner)),
        bytes(ether(IP(src="1.1.1.1", dst="2.2.2.2") / UDP(dport=4789) / VXLAN() / ether(inner))),
        bytes(
            ether(IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=3, code=3) / IPerror(bytes(probe)))
        ),
        bytes(
            ether(IPv6(src="::1", dst="::2") / IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment() / UDP())
        ),
        bytes(Ether(src=MAC_A, dst=MAC_B) / MPLS(s=0) / MPLS() / (b"\0" * 4) / ether(inner)),
    ]


frames = st.one_of(
    st.binary(max_size=120),
    st.tuples(
        st.integers(0, 5),
        st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
        st.integers(0, 200),
    ).map(
        lambda t: bytes(
            _overwrite(seeds()[t[0]], t[1])[: t[2] if t[2] < 150 else None],
        )
    ),
)


def _overwrite(data: bytes, edits) -> bytes:
    buf = bytearray(data)
    for pos, value in edits:
        if pos < len(buf):
            buf[pos] = value
    return bytes(buf)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(frames, st.sampled_from(LINK_TYPES)), min_size=1, max_size=12))
def test_decode_counts_every_frame_and_never_raises(cases):
    raw = raw_batch([f for f, _ in cases], [lt for _, lt in cases])
    rows, counts = decode(raw)
    counts.check()
    assert counts.frames == len(cases)
    assert set(rows.frame.tolist()) <= set(range(1, len(cases) + 1))
    # Every frame that produced a row was counted as decoded IP, once.
    assert len(set(rows.frame.tolist())) == counts.ip
