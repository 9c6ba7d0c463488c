"""PPP (9), PPP in HDLC framing (50) and Cisco HDLC (104): what is not IP.
The IP they carry is checked against tshark in tests/conformance/test_built_captures.py."""

from __future__ import annotations

import struct

from support.decoders import V4, decoded


def test_ppp_protocols_other_than_ip_are_non_ip():
    lcp = b"\xff\x03\xc0\x21\x01\x01\x00\x04"
    mpls = b"\xff\x03\x02\x81" + struct.pack(">I", (16 << 12) | 0x100 | 64) + bytes(V4)
    rows, counts = decoded([lcp, mpls, b"\xff\x03"], 9)
    assert counts.non_ip == {-0xC021: 1}
    assert counts.undecodable == {"link header cut short": 1}
    assert [r["dport"] for r in rows] == [53]  # IP over MPLS over PPP


def test_cisco_hdlc_keepalives_are_non_ip():
    slarp = struct.pack(">BBH", 0x8F, 0, 0x8035) + bytes(20)
    _, counts = decoded([slarp], 104)
    assert counts.non_ip == {0x8035: 1}
