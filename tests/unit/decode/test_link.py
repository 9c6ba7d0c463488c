"""Link layers (decode/link.py): every link type, non-IP and unsupported frames,
headers cut short. Tag stacks, MPLS and PPPoE: test_ethertype.py."""

from __future__ import annotations

import struct

import pytest
from scapy.contrib.lldp import (
    LLDPDUChassisID,
    LLDPDUEndOfLLDPDU,
    LLDPDUPortID,
    LLDPDUTimeToLive,
)
from scapy.contrib.mpls import MPLS
from scapy.layers.l2 import ARP, LLC, Dot1Q, Dot3, Ether
from scapy.layers.ppp import PPP, PPPoE

from portmatrix.decode import batch as b
from portmatrix.decode import decode
from portmatrix.testing.captures import (
    MAC_A,
    MAC_B,
    ether,
    raw_batch,
)
from support.decoders import V4, V6, assert_v4, assert_v6, decoded


def sll(payload, proto):
    return struct.pack(">HHH8sH", 0, 1, 6, bytes(8), proto) + bytes(payload)


def sll2(payload, proto):
    return struct.pack(">HHIHBB8s", proto, 0, 2, 1, 0, 6, bytes(8)) + bytes(payload)


@pytest.mark.parametrize(
    ("linktype", "wrap4", "wrap6"),
    [
        (1, ether, ether),
        (113, lambda p: sll(p, 0x0800), lambda p: sll(p, 0x86DD)),
        (276, lambda p: sll2(p, 0x0800), lambda p: sll2(p, 0x86DD)),
        (101, bytes, bytes),
        (12, bytes, bytes),
        (14, bytes, bytes),
        (228, bytes, None),
        (229, None, bytes),
        # NULL: the address family in the byte order of the capturing host (either).
        (0, lambda p: struct.pack("<I", 2) + bytes(p), lambda p: struct.pack("<I", 30) + bytes(p)),
        (0, lambda p: struct.pack(">I", 2) + bytes(p), lambda p: struct.pack(">I", 24) + bytes(p)),
        (0, lambda p: struct.pack("<I", 2) + bytes(p), lambda p: struct.pack("<I", 28) + bytes(p)),
        (0, lambda p: struct.pack("<I", 2) + bytes(p), lambda p: struct.pack("<I", 10) + bytes(p)),
        # LOOP: always network byte order.
        (
            108,
            lambda p: struct.pack(">I", 2) + bytes(p),
            lambda p: struct.pack(">I", 24) + bytes(p),
        ),
    ],
    ids=[
        "ethernet",
        "sll",
        "sll2",
        "raw-101",
        "raw-12",
        "raw-14",
        "ipv4-228",
        "ipv6-229",
        "null-le-darwin",
        "null-be-netbsd",
        "null-le-freebsd",
        "null-le-linux",
        "loop",
    ],
)
def test_link_types(linktype, wrap4, wrap6):
    cases = [(w(p), check) for w, p, check in ((wrap4, V4, assert_v4), (wrap6, V6, assert_v6)) if w]
    rows, counts = decoded([frame for frame, _ in cases], linktype)
    assert counts.ip == counts.frames == len(cases)
    assert len(rows) == len(cases)
    for row, (_, check) in zip(rows, cases, strict=True):
        check(row)
        assert row["vlan"] == -1 and row["encap"] == 0 and row["kind"] == b.PACKET


def test_mixed_link_types_in_one_batch():
    packets = [ether(V4), bytes(V6), struct.pack(">I", 2) + bytes(V4), bytes(V4)]
    rows, counts = decoded(packets, [1, 101, 108, 195])
    assert [r["frame"] for r in rows] == [1, 2, 3]
    assert counts.ip == 3 and counts.unsupported == {195: 1}


def test_unsupported_link_type_is_counted_per_type():
    rows, counts = decoded([bytes(V4)] * 3 + [bytes(V4)], [195, 195, 148, 147])
    assert rows == []
    assert counts.unsupported == {195: 2, 148: 1, 147: 1}
    assert counts.ip == 0


def test_non_ip_frames_are_counted_by_ethertype():
    lldp = (
        Ether(src=MAC_A, dst="01:80:c2:00:00:0e")
        / LLDPDUChassisID(subtype=4, id=MAC_A)
        / LLDPDUPortID(subtype=5, id=b"eth0")
        / LLDPDUTimeToLive(ttl=120)
        / LLDPDUEndOfLLDPDU()
    )
    arp = Ether(src=MAC_A, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="192.0.2.1", pdst="192.0.2.2")
    llc = Dot3(src=MAC_A, dst=MAC_B) / LLC() / b"spanning tree"
    tagged_arp = Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=5) / ARP()
    rows, counts = decoded([arp, lldp, llc, tagged_arp, ether(V4)])
    assert counts.non_ip == {0x0806: 2, 0x88CC: 1, -1: 1}
    assert counts.ip == 1 and len(rows) == 1


def test_null_with_another_address_family_is_not_ip():
    rows, counts = decoded([struct.pack("<I", 7) + bytes(V4)], 0)
    assert rows == [] and counts.non_ip == {-1: 1}


@pytest.mark.parametrize(
    ("linktype", "frame"),
    [
        (1, bytes(ether(V4))[:10]),
        (113, sll(V4, 0x0800)[:12]),
        (276, sll2(V4, 0x0800)[:15]),
        (0, b"\x02\x00"),
        (108, b"\x00"),
        (101, b""),
        (1, bytes(Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=3) / V4)[:16]),
        (1, bytes(Ether(src=MAC_A, dst=MAC_B) / MPLS(label=1, s=0) / MPLS(label=2) / V4)[:20]),
        (1, bytes(Ether(src=MAC_A, dst=MAC_B) / PPPoE() / PPP(proto=0x0021) / V4)[:18]),
    ],
    ids=["ethernet", "sll", "sll2", "null", "loop", "raw-empty", "vlan-tag", "mpls", "pppoe"],
)
def test_link_header_cut_short(linktype, frame):
    rows, counts = decoded([frame], linktype)
    assert rows == []
    assert counts.undecodable == {"link header cut short": 1}


def test_raw_ip_with_another_version_is_undecodable():
    bad = b"\x50" + bytes(V4)[1:]
    rows, counts = decoded([bad, bytes(V4)], 101)
    assert len(rows) == 1
    assert counts.undecodable == {"IP version is neither 4 nor 6": 1}
    assert counts.non_ip == {}


def test_ethertype_and_ip_version_disagree():
    frame = Ether(src=MAC_A, dst=MAC_B, type=0x0800) / V6
    rows, counts = decoded([frame])
    assert rows == [] and counts.undecodable == {"IP version is neither 4 nor 6": 1}


def test_buckets_add_up_to_the_frames():
    frames = [
        ether(V4),
        ether(V6, vlans=[1, 2]),
        Ether(src=MAC_A, dst=MAC_B) / ARP(),
        bytes(ether(V4))[:20],
        Ether(src=MAC_A, dst=MAC_B) / MPLS() / (b"\x70" * 30),
        b"",
    ]
    raw = raw_batch(frames)
    _, counts = decode(raw)
    counts.check()
    assert counts.frames == 6
    assert counts.ip == 2
    assert counts.non_ip == {0x0806: 1}
    assert counts.undecodable == {
        "IP header cut short": 1,
        "MPLS payload not IP or Ethernet": 1,
        "link header cut short": 1,
    }
