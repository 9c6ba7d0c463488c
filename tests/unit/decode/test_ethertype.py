"""The layers under an Ethernet type (ethertype.LAYERS): VN-Tag, E-tag, PBB,
pseudowires with and without a control word, LLC/SNAP, MACsec."""

from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import IP, UDP

from portmatrix.testing.captures import decode_packets, packet_rows
from support import encapsulated as enc

V4 = IP(src="192.0.2.1", dst="198.51.100.2") / UDP(sport=5353, dport=53) / b"query"


def decoded(frames, linktype):
    rows, counts = decode_packets(frames, linktype)
    counts.check()
    return packet_rows(rows), counts


@pytest.mark.parametrize(
    ("frame", "vlan"),
    [
        (enc.vntag(V4), -1),
        (enc.etag(V4), -1),
        (enc.pbb(V4), 20),  # the backbone's S-tag
        (enc.eompls(V4), -1),
        (enc.eompls_no_cw(V4), -1),
        (
            enc._eth(b"", 100)[:12]
            + struct.pack(">H", 8 + len(V4))
            + b"\xaa\xaa\x03\0\0\0\x08\0"
            + bytes(V4),
            -1,
        ),  # 802.3 with LLC/SNAP
    ],
    ids=["vn-tag", "802.1br", "pbb", "eompls", "eompls-no-cw", "snap"],
)
def test_ethernet_layers(frame, vlan):
    rows, counts = decoded([frame], 1)
    assert counts.ip == 1
    assert (rows[0]["dport"], rows[0]["vlan"]) == (53, vlan)


def test_macsec_is_counted_as_encrypted():
    rows, counts = decoded([enc.macsec(V4)], 1)
    assert rows == [] and counts.undecodable == {"encrypted (MACsec)": 1}


def test_more_tags_than_the_limit_are_undecodable_not_non_ip():
    from portmatrix.decode.batch import MAX_LAYERS, TOO_MANY_LAYERS, UNDECODABLE
    from portmatrix.testing.captures import ether

    at_limit = ether(V4, vlans=list(range(1, MAX_LAYERS + 1)))
    beyond = ether(V4, vlans=list(range(1, MAX_LAYERS + 2)))
    rows, counts = decoded([at_limit, beyond], 1)
    assert [r["frame"] for r in rows] == [1]
    assert rows[0]["dport"] == 53 and rows[0]["vlan"] == 1
    assert counts.undecodable == {UNDECODABLE[TOO_MANY_LAYERS]: 1}
    assert counts.non_ip == {}


def test_an_mpls_stack_without_a_bottom_within_the_limit_is_undecodable():
    from scapy.contrib.mpls import MPLS
    from scapy.layers.l2 import Ether

    from portmatrix.decode.batch import MAX_LAYERS, TOO_MANY_LAYERS, UNDECODABLE

    def stack(n):
        labels = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b")
        for k in range(n):
            labels = labels / MPLS(label=16 + k, s=int(k == n - 1))
        return labels / V4

    rows, counts = decoded([stack(MAX_LAYERS), stack(MAX_LAYERS + 1)], 1)
    assert [r["frame"] for r in rows] == [1]
    assert counts.undecodable == {UNDECODABLE[TOO_MANY_LAYERS]: 1}
