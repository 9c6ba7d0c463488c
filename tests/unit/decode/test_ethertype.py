"""What an Ethernet type leads to (decode/ethertype.py, its LAYERS table): VLAN
and QinQ tag stacks (the outer tag is the frame's VLAN), VN-Tag, E-tag, PBB, MPLS
label stacks and pseudowires with and without a control word, PPPoE sessions,
LLC/SNAP, MACsec."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from scapy.contrib.mpls import MPLS
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE

from portmatrix.decode import batch as b
from portmatrix.decode.ethertype import follow
from portmatrix.testing.captures import MAC_A, MAC_B, ether
from support import encapsulated as enc
from support.decoders import V4, V6, assert_v4, assert_v6, decoded


def test_vlan_tag_is_recorded():
    rows, _ = decoded([ether(V4, vlans=[10]), ether(V6, vlans=[4094]), ether(V4)])
    assert [r["vlan"] for r in rows] == [10, 4094, -1]
    assert_v4(rows[0])
    assert_v6(rows[1])


@pytest.mark.parametrize("outer_type", [0x88A8, 0x8100, 0x9100, 0x9200])
def test_qinq_records_the_outer_vlan(outer_type):
    frame = (
        Ether(src=MAC_A, dst=MAC_B, type=outer_type)
        / Dot1Q(vlan=100, type=0x8100)
        / Dot1Q(vlan=200)
        / Dot1Q(vlan=300)
        / V4
    )
    rows, counts = decoded([frame])
    assert counts.ip == 1
    assert rows[0]["vlan"] == 100
    assert_v4(rows[0])


def test_mpls_label_stack():
    frames = [
        Ether(src=MAC_A, dst=MAC_B)
        / MPLS(label=16, s=0)
        / MPLS(label=17, s=0)
        / MPLS(label=18)
        / V4,
        Ether(src=MAC_A, dst=MAC_B) / MPLS(label=16) / V6,
        # MPLS under a VLAN tag (as in zeek's mixed-vlan-mpls.pcap).
        Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=7, type=0x8847) / MPLS(label=20) / V4,
        Ether(src=MAC_A, dst=MAC_B, type=0x8848) / MPLS(label=21) / V6,  # multicast MPLS
    ]
    rows, counts = decoded(frames)
    assert counts.ip == 4
    assert_v4(rows[0])
    assert_v6(rows[1])
    assert_v4(rows[2])
    assert rows[2]["vlan"] == 7
    assert_v6(rows[3])


def test_mpls_pseudowire_with_control_word_and_ethernet():
    inner = Ether(src=MAC_B, dst=MAC_A) / Dot1Q(vlan=33) / V4
    frame = (
        Ether(src=MAC_A, dst=MAC_B) / MPLS(label=100, s=0) / MPLS(label=200) / (b"\0" * 4) / inner
    )
    rows, counts = decoded([frame])
    assert counts.ip == 1
    assert_v4(rows[0])
    assert rows[0]["vlan"] == 33  # the only tag there is, inside the pseudowire


def test_mpls_payload_neither_ip_nor_ethernet():
    frame = Ether(src=MAC_A, dst=MAC_B) / MPLS(label=16) / (b"\x50" + b"\0" * 30)
    rows, counts = decoded([frame])
    assert rows == [] and counts.undecodable == {"MPLS payload not IP or Ethernet": 1}


def test_pppoe_session():
    base = Ether(src=MAC_A, dst=MAC_B) / PPPoE(sessionid=9)
    frames = [
        base / PPP(proto=0x0021) / V4,
        base / PPP(proto=0x0057) / V6,
        base / PPP(proto=0xC021) / b"\x01\x01\x00\x04",  # LCP: not IP
        Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=8) / PPPoE() / PPP(proto=0x0021) / V4,
    ]
    rows, counts = decoded(frames)
    assert counts.ip == 3 and counts.non_ip == {-0xC021: 1}
    assert_v4(rows[0])
    assert_v6(rows[1])
    assert rows[2]["vlan"] == 8


def test_follow_walks_many_frames_at_once_from_their_ethernet_types():
    """Straight on the arrays: each frame's bytes after its Ethernet type."""
    payloads = [
        bytes(Dot1Q(vlan=5, type=0x86DD) / V6),  # a tag, then IPv6
        bytes(V4),  # IPv4 at once
        bytes(Dot1Q(vlan=6, type=0x0806)) + bytes(28),  # a tag, then ARP
        bytes(PPPoE() / PPP(proto=0x0021) / V4),
        b"\x00\x07",  # a tag cut short
    ]
    types = [0x8100, 0x0800, 0x88A8, 0x8864, 0x8100]
    data = np.frombuffer(b"".join(payloads), np.uint8)
    sizes = np.array([len(p) for p in payloads])
    pos = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    end = pos + sizes
    vlan = np.full(5, -1, np.int32)
    status = np.full(5, b.IP, np.int8)
    l3pos, kind, etype = follow(data, pos, end, np.array(types), vlan, status)
    assert kind.tolist() == [6, 4, 0, 4, 0]
    assert (l3pos - pos).tolist()[:4] == [4, 0, 4, 8]
    assert etype.tolist()[:4] == [0x86DD, 0x0800, 0x0806, 0x0800]
    assert vlan.tolist() == [5, -1, 6, -1, -1]
    assert status.tolist() == [b.IP, b.IP, b.NON_IP, b.IP, b.TRUNC_LINK]
    assert pos.tolist()[:2] == [0, len(payloads[0])]  # the caller's positions are kept


def test_a_stack_deeper_than_any_real_one_is_not_followed_forever():
    frame = Ether(src=MAC_A, dst=MAC_B, type=0x8100)
    for vid in range(1, 40):
        frame = frame / Dot1Q(vlan=vid, type=0x8100)
    rows, counts = decoded([frame / Dot1Q(vlan=99) / V4, ether(V4)])
    assert len(rows) == 1
    # Past MAX_LAYERS the frame is undecodable for that reason: not raised, and not
    # taken for a non-IP frame (which would hide the packet inside).
    assert counts.non_ip == {}
    assert counts.undecodable == {b.UNDECODABLE[b.TOO_MANY_LAYERS]: 1}


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
