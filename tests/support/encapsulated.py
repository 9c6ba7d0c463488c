"""Captures built for each link type and encapsulation the decoder reads: the
same known conversations (a TCP session over IPv4, a DNS exchange over IPv6)
wrapped in every layer, frame by frame, with scapy or hand-made bytes.

`WRAPS[name]` is (link type, wrap) where wrap(ip_packet) -> frame bytes.
"""

from __future__ import annotations

import struct

from scapy.layers.dot11 import Dot11, Dot11QoS, RadioTap
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, LLC, SNAP, Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE

from portmatrix.testing.captures import MAC_A, MAC_B, tcp_session

CLIENT, SERVER = "10.1.0.1", "10.2.0.2"
CLIENT6, SERVER6 = "2001:db8::1", "2001:db8::53"
OUTER_A, OUTER_B = "192.0.2.10", "192.0.2.20"


def conversation(sport: int = 40000) -> list:
    """The IP packets every capture carries: 10 TCP packets and 2 UDP."""
    tcp = tcp_session(CLIENT, SERVER, sport, 443, data=[b"hello", b"again"])
    dns = [
        IPv6(src=CLIENT6, dst=SERVER6) / UDP(sport=5353, dport=53) / b"query",
        IPv6(src=SERVER6, dst=CLIENT6) / UDP(sport=53, dport=5353) / b"answer",
    ]
    return [*tcp, *dns]


# What tshark and we must both find in every capture (conversation -> packets).
EXPECTED = {
    "tcp": {(f"{CLIENT}:40000", f"{SERVER}:443")},
    "udp": {(f"{CLIENT6}:5353", f"{SERVER6}:53")},
}


def _etype(pkt) -> int:
    return 0x86DD if isinstance(pkt, IPv6) else 0x0800


def _ppp_proto(pkt) -> int:
    return 0x0057 if isinstance(pkt, IPv6) else 0x0021


def _eth(pkt, etype=None) -> bytes:
    return bytes(Ether(src=MAC_A, dst=MAC_B, type=etype or _etype(pkt))) + bytes(pkt)


def ppp(pkt) -> bytes:
    return b"\xff\x03" + struct.pack(">H", _ppp_proto(pkt)) + bytes(pkt)


def ppp_bare(pkt) -> bytes:
    """PPP without address and control, the protocol compressed to one byte."""
    return bytes([_ppp_proto(pkt)]) + bytes(pkt)


def cisco_hdlc(pkt) -> bytes:
    return struct.pack(">BBH", 0x0F, 0, _etype(pkt)) + bytes(pkt)


def _tlv(kind: int, value: bytes) -> bytes:
    length = 4 + len(value)
    return struct.pack("<HH", length, kind) + value + bytes(-length % 4)


def nflog(pkt, group: int = 5, prefix: bytes = b"DROP-IN") -> bytes:
    family = 10 if isinstance(pkt, IPv6) else 2
    head = struct.pack(">BBH", family, 0, group)
    hwproto = _tlv(1, struct.pack(">HBB", _etype(pkt), 0, 0))  # NFULA_PACKET_HDR
    return head + hwproto + _tlv(10, prefix + b"\0") + _tlv(9, bytes(pkt))


def _dot11(pkt, qos: bool = False, protected: bool = False):
    fc = 0x01 | (0x40 if protected else 0)  # to the distribution system; protected
    head = Dot11(type=2, subtype=8 if qos else 0, FCfield=fc, addr1=MAC_B, addr2=MAC_A, addr3=MAC_B)
    if qos:
        head = head / Dot11QoS()
    return head / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=_etype(pkt)) / pkt


def dot11(pkt) -> bytes:
    return bytes(_dot11(pkt))


def radiotap(pkt) -> bytes:
    return bytes(RadioTap(present="Flags+Rate", Flags=0, Rate=2) / _dot11(pkt, qos=True))


def ppi(pkt) -> bytes:
    inner = dot11(pkt)
    return struct.pack("<BBHI", 0, 0, 8, 105) + inner


def pppoe(pkt) -> bytes:
    return bytes(
        Ether(src=MAC_A, dst=MAC_B) / PPPoE(sessionid=7) / PPP(proto=_ppp_proto(pkt)) / pkt
    )


def mpls(pkt) -> bytes:
    labels = struct.pack(">II", 16 << 12, (17 << 12) | 0x100 | 64)
    return _eth(b"", 0x8847)[:14] + labels + bytes(pkt)


def eompls(pkt) -> bytes:
    """Ethernet over MPLS: a pseudowire with its control word."""
    label = struct.pack(">I", (100 << 12) | 0x100 | 64)
    return bytes(Ether(src=MAC_A, dst=MAC_B, type=0x8847)) + label + bytes(4) + _eth(pkt)


def eompls_no_cw(pkt) -> bytes:
    """Ethernet over MPLS without a control word."""
    label = struct.pack(">I", (100 << 12) | 0x100 | 64)
    return bytes(Ether(src=MAC_A, dst=MAC_B, type=0x8847)) + label + _eth(pkt)


def _gre(ptype: int, payload: bytes, seq: bool = False) -> bytes:
    outer = IP(src=OUTER_A, dst=OUTER_B) / GRE(proto=ptype, seqnum_present=int(seq))
    return bytes(Ether(src=MAC_A, dst=MAC_B) / outer / payload)


def gre_teb(pkt) -> bytes:
    return _gre(0x6558, _eth(pkt))


def erspan2(pkt) -> bytes:
    header = struct.pack(">HHI", (1 << 12) | 10, 3, 0)  # version 1 (type II), VLAN 10, session 3
    return _gre(0x88BE, header + _eth(pkt), seq=True)


def erspan1(pkt) -> bytes:
    return _gre(0x88BE, _eth(pkt))


def erspan3(pkt) -> bytes:
    header = struct.pack(">HHIHBB", (2 << 12) | 10, 3, 12345, 0, 0, 0)  # version 2 (type III)
    return _gre(0x22EB, header + _eth(pkt), seq=True)


def vntag(pkt) -> bytes:
    return (
        bytes(Ether(src=MAC_A, dst=MAC_B, type=0x8926))
        + bytes(4)
        + struct.pack(">H", _etype(pkt))
        + bytes(pkt)
    )


def etag(pkt) -> bytes:
    tag = struct.pack(">HI", 0x0000, 0x00010000)
    return (
        bytes(Ether(src=MAC_A, dst=MAC_B, type=0x893F))
        + tag
        + struct.pack(">H", _etype(pkt))
        + bytes(pkt)
    )


def pbb(pkt) -> bytes:
    backbone = Ether(src=MAC_A, dst=MAC_B, type=0x88A8) / Dot1Q(vlan=20, type=0x88E7)
    return bytes(backbone) + struct.pack(">I", 0x00001234) + _eth(pkt)


def macsec(pkt) -> bytes:
    """An encrypted MACsec frame: a SecTAG, ciphertext, an ICV; nothing readable."""
    sectag = struct.pack(">BBI", 0x2C, 0, 1) + bytes(8)
    return bytes(Ether(src=MAC_A, dst=MAC_B, type=0x88E5)) + sectag + bytes(len(pkt)) + bytes(16)


def six_in_four(pkt) -> bytes:
    """IPv6 in IPv4 (protocol 41); IPv4 packets stay as they are."""
    if not isinstance(pkt, IPv6):
        return _eth(pkt)
    return _eth(IP(src=OUTER_A, dst=OUTER_B, proto=41) / pkt)


def teredo(pkt) -> bytes:
    """IPv6 in UDP (Teredo), with an origin indication; IPv4 packets stay as they are."""
    if not isinstance(pkt, IPv6):
        return _eth(pkt)
    origin = struct.pack(">HH4s", 0, 0xFFFF, bytes(4))
    outer = IP(src=OUTER_A, dst=OUTER_B) / UDP(sport=3544, dport=40001) / (origin + bytes(pkt))
    return _eth(outer)


WRAPS = {
    "ppp": (9, ppp),
    "ppp-bare": (9, ppp_bare),
    "ppp-hdlc": (50, ppp),
    "ppp-hdlc-cisco": (50, cisco_hdlc),
    "cisco-hdlc": (104, cisco_hdlc),
    "nflog": (239, nflog),
    "ieee802.11": (105, dot11),
    "radiotap": (127, radiotap),
    "ppi": (192, ppi),
    "pppoe": (1, pppoe),
    "mpls": (1, mpls),
    "ethernet-over-mpls": (1, eompls),
    "ethernet-over-mpls-no-cw": (1, eompls_no_cw),
    "gre-teb": (1, gre_teb),
    "erspan-1": (1, erspan1),
    "erspan-2": (1, erspan2),
    "erspan-3": (1, erspan3),
    "vn-tag": (1, vntag),
    "802.1br": (1, etag),
    "pbb": (1, pbb),
    "teredo": (1, teredo),
    "6in4": (1, six_in_four),
}


# tshark cannot tell an Ethernet pseudowire from its payload: it is told, as an
# operator would be (Decode As).
TSHARK_OPTIONS = {
    "ethernet-over-mpls": ("-d", "mpls.label==100,pwethcw"),
    "ethernet-over-mpls-no-cw": ("-d", "mpls.label==100,pwethnocw"),
}


def frames(name: str) -> tuple[int, list[bytes]]:
    """(link type, frames) of the conversation wrapped in `name`."""
    linktype, wrap = WRAPS[name]
    return linktype, [wrap(p) for p in conversation()]
