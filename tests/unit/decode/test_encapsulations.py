"""Every link type and encapsulation of tests/encapsulated.py, damaged: cut short
at every length, bytes overwritten. Nothing raises, every frame lands in one
bucket, and the compiled fast path and the numpy reference agree row for row.
The headers' own cases (non-IP payloads, encrypted frames, options) follow."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dot11 import Dot11, Dot11Beacon, Dot11Elt, RadioTap
from scapy.layers.inet import IP, UDP

from portmatrix.decode import batch as b
from portmatrix.decode import common, decode, nflog
from portmatrix.decode.ethertype import LAYERS, VLAN_TAGS
from portmatrix.sources.base import CaptureInfo
from portmatrix.testing.captures import decode_packets, packet_rows, raw_batch
from support import encapsulated as enc
from support.decoders import assert_same

V4 = IP(src="192.0.2.1", dst="198.51.100.2") / UDP(sport=5353, dport=53) / b"query"


def decoded(frames, linktype):
    rows, counts = decode_packets(frames, linktype)
    counts.check()
    return packet_rows(rows), counts


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


SEEDS = [(lt, f) for lt, w in enc.WRAPS.values() for f in [w(V4)]]


@st.composite
def damaged(draw):
    linktype, frame = draw(st.sampled_from(SEEDS))
    frame = bytearray(frame)
    for _ in range(draw(st.integers(0, 4))):
        frame[draw(st.integers(0, len(frame) - 1))] = draw(st.integers(0, 255))
    return bytes(frame[: draw(st.integers(0, len(frame)))]), linktype


@settings(max_examples=300, deadline=None)
@given(st.lists(damaged(), min_size=1, max_size=12))
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


def test_wlan_frames_without_packets():
    beacon = RadioTap() / Dot11(type=0, subtype=8) / Dot11Beacon() / Dot11Elt(ID=0, info=b"x")
    ack = RadioTap() / Dot11(type=1, subtype=13)
    null = RadioTap() / Dot11(type=2, subtype=4, FCfield=0x01)
    protected = RadioTap() / enc._dot11(V4, protected=True)
    plain_llc = bytes(RadioTap() / Dot11(type=2, FCfield=0x01)) + b"\x42\x42\x03" + bytes(20)
    rows, counts = decoded([beacon, ack, null, protected, plain_llc], 127)
    assert rows == []
    assert counts.non_ip == {b.WLAN_MANAGEMENT: 1, b.WLAN_CONTROL: 1, b.WLAN_NO_DATA: 1, -1: 1}
    assert counts.undecodable == {"encrypted (802.11 protected frame)": 1}


def test_wlan_four_address_frame_and_radiotap_padding():
    wds = Dot11(type=2, FCfield=0x03, addr4="02:00:00:00:00:0c") / enc._dot11(V4).payload
    # Radiotap with a TSFT field (8 bytes, 8-aligned), Flags saying the 802.11
    # header is padded to 4 bytes (a QoS header is 26: 2 bytes of padding), and a
    # second present word.
    qos = bytes(enc._dot11(V4, qos=True))
    padded = qos[:26] + b"\0\0" + qos[26:]
    present = struct.pack("<II", (1 << 0) | (1 << 1) | (1 << 31), 0)
    head = present + bytes(4) + struct.pack("<Q", 7) + bytes([0x20]) + bytes(3)
    radiotap = struct.pack("<BBH", 0, 0, 4 + len(head)) + head + padded
    rows, _ = decoded([bytes(wds)], 105)
    assert [r["dport"] for r in rows] == [53]
    rows, _ = decoded([radiotap], 127)
    assert [r["dport"] for r in rows] == [53]


def test_ppi_names_its_inner_link_type():
    ether_inside = struct.pack("<BBHI", 0, 0, 8, 1) + enc._eth(V4)
    unknown_inside = struct.pack("<BBHI", 0, 0, 8, 195) + bytes(V4)
    ppi_in_ppi = struct.pack("<BBHI", 0, 0, 8, 192) + ether_inside
    rows, counts = decoded([ether_inside, unknown_inside, ppi_in_ppi], 192)
    assert [r["dport"] for r in rows] == [53]
    assert counts.unsupported == {192: 2}


def test_nflog_big_endian_tlvs_and_records_without_a_packet():
    be = struct.pack(">BBH", 2, 0, 3) + struct.pack(">HH", 4 + len(V4), 9) + bytes(V4)
    no_payload = struct.pack(">BBH", 2, 0, 3) + struct.pack("<HH", 8, 10) + b"abc\0"
    arp_family = enc.nflog(V4)[:0] + struct.pack(">BBH", 7, 0, 3) + enc.nflog(V4)[4:]
    rows, counts = decoded([be, no_payload, arp_family, b"\x02\x00"], 239)
    assert [r["dport"] for r in rows] == [53]
    assert counts.non_ip == {b.NFLOG_OTHER: 2}
    assert counts.undecodable == {"link header cut short": 1}


def test_nflog_labels_are_made_once_per_rule():
    frames = [enc.nflog(V4, 5, b"A"), enc.nflog(V4, 5, b"B"), enc.nflog(V4, 5, b"A")]
    frames += [enc.nflog(V4, 300, b"")]
    raw = raw_batch(frames, 239)
    index, names = nflog.labels(raw.data, raw.offset, raw.offset + raw.caplen)
    assert [names[i] for i in index] == ["nflog:5 A", "nflog:5 B", "nflog:5 A", "nflog:300"]
    info = CaptureInfo(path="x")
    rows, _ = decode(raw, label=info.label)
    assert [i.name for i in info.interfaces] == names  # each rule once
    assert [names[i] for i in rows.iface] == [names[i] for i in index]
    again, _ = decode(raw, label=info.label)  # the next batch reuses them
    assert len(info.interfaces) == 3 and np.array_equal(again.iface, rows.iface)


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
