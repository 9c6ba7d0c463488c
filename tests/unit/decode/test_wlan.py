"""802.11, radiotap and PPI: frames without packets, encrypted frames, four
addresses, padding, and the link type PPI names."""

from __future__ import annotations

import struct

from scapy.layers.dot11 import Dot11, Dot11Beacon, Dot11Elt, RadioTap

from portmatrix.decode import batch as b
from support import encapsulated as enc
from support.decoders import V4, decoded


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
