"""Packet shapes several test files build: a refused or unanswered connection, a
UDP probe and the ICMP error answering it, a mid-stream session, numbered
groups of packets. IP packets (no link layer) unless the name says Ethernet.
"""

from __future__ import annotations

from scapy.layers.inet import ICMP, TCP, UDP, IPerror

from portmatrix.testing.captures import ether, ip, tcp_session


def syn(src, dst, sport, dport):
    return ip(src, dst) / TCP(sport=sport, dport=dport, flags="S", seq=1000)


def rst_ack(src, dst, sport, dport):
    return ip(src, dst) / TCP(sport=sport, dport=dport, flags="RA", seq=0, ack=1001)


def refused(client, server, sport, dport):
    """A SYN and the RST-ACK refusing it."""
    return [syn(client, server, sport, dport), rst_ack(server, client, dport, sport)]


def udp(src, dst, sport, dport, load=b"x"):
    return ip(src, dst) / UDP(sport=sport, dport=dport) / load


def icmp_unreachable(probe):
    """The ICMP port unreachable its destination answers `probe` with."""
    return ip(probe.dst, probe.src) / ICMP(type=3, code=3) / IPerror(bytes(probe)[:28])


def midstream(client, server, sport, dport):
    """A TCP session whose handshake the capture missed."""
    return tcp_session(client, server, sport, dport, handshake=False, close="open")


def udp_frames(count: int, size: int = 40) -> list:
    """`count` Ethernet frames of UDP 10.0.0.1 -> 10.0.0.2:53, each of its own
    source port, `size` bytes of payload."""
    return [
        ether(
            ip("10.0.0.1", "10.0.0.2") / UDP(sport=2000 + i, dport=53) / (bytes([i % 256]) * size)
        )
        for i in range(count)
    ]


def numbered(*groups):
    """Packets of labelled groups in order, and the 1-based frames of each label."""
    packets, frames = [], {}
    for label, group in groups:
        start = len(packets) + 1
        packets += group
        frames.setdefault(label, set()).update(range(start, start + len(group)))
    return packets, frames


def only(items):
    """The one item of `items` (failing with the list when there is not exactly one)."""
    assert len(items) == 1, items
    return items[0]
