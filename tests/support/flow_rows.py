"""What the flow tests share: addresses, a packet maker, and flows as dicts."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP

from portmatrix.testing.captures import ether, flow_dicts, flows_of

C, S, FW = "10.0.0.1", "10.0.0.2", "10.0.0.254"
C6, S6 = "2001:db8::1", "2001:db8::2"


def flows(packets, *, vlans=()):
    """The flows of IP packets (framed in Ethernet, tagged with `vlans`), as dicts."""
    return flow_dicts(flows_of([ether(p, vlans=vlans) for p in packets]))


def tcp(src, dst, sport, dport, flags, seq=0, ack=0):
    return IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack)


def only(rows):
    assert len(rows) == 1, rows
    return rows[0]
