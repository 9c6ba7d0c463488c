"""Random packet events on a few 5-tuples, for the property tests of flow
building: each event is (5-tuple, what, sent by the server?, ISN choice) and
`packet(event)` its Ethernet frame; half the packets fall on one 5-tuple, so
connections on it interact (port reuse, closes, ICMP errors)."""

from __future__ import annotations

from functools import cache

from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror
from scapy.layers.inet6 import IPv6

from portmatrix.testing.captures import ether

# A few 5-tuples: (proto, client, server, client port, server port).
TUPLES = (
    ("tcp", "10.0.0.1", "10.0.0.2", 40000, 80),
    ("tcp", "10.0.0.3", "10.0.0.2", 40001, 22),
    ("tcp", "2001:db8::1", "2001:db8::2", 50000, 443),
    ("udp", "10.0.0.1", "10.0.0.2", 50000, 53),
    ("udp", "10.0.0.5", "10.0.0.6", 123, 123),
    ("icmp", "10.0.0.1", "10.0.0.9", 7, 7),
)
TCP_FLAGS = ("S", "SA", "A", "PA", "FA", "R", "RA", "S", "icmp-error")
ISNS = (1000, 2000, 3000)  # a new SYN picks one: the same ISN again, or a new one


def ip(src, dst):
    return IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)


@cache
def packet(event: tuple[int, int, bool, int]) -> bytes:
    """The frame of one event: (5-tuple, what, sent by the server?, ISN choice)."""
    index, what, from_server, isn = event
    proto, client, server, cport, sport = TUPLES[index]
    src, dst, a, b = (
        (server, client, sport, cport) if from_server else (client, server, cport, sport)
    )
    if proto == "tcp":
        flags = TCP_FLAGS[what % len(TCP_FLAGS)]
        if flags == "icmp-error" and ":" not in client:
            syn = IP(src=client, dst=server) / TCP(sport=cport, dport=sport, flags="S")
            return bytes(
                ether(IP(src=server, dst=client) / ICMP(type=3, code=13) / IPerror(bytes(syn)[:28]))
            )
        flags = "S" if flags == "icmp-error" else flags
        seq = ISNS[isn] + (7 if from_server else 0)
        return bytes(ether(ip(src, dst) / TCP(sport=a, dport=b, flags=flags, seq=seq)))
    if proto == "udp":
        if what % 4 == 3:  # the server says the port is closed
            probe = IP(src=client, dst=server) / UDP(sport=cport, dport=sport)
            return bytes(
                ether(
                    IP(src=server, dst=client) / ICMP(type=3, code=3) / IPerror(bytes(probe)[:28])
                )
            )
        return bytes(ether(ip(src, dst) / UDP(sport=a, dport=b) / (b"u" * what)))
    return bytes(
        ether(IP(src=src, dst=dst) / ICMP(type=0 if from_server else 8, id=cport, seq=what))
    )


events = st.lists(
    st.tuples(
        # Half the packets on one 5-tuple, so that connections on it interact.
        st.one_of(st.just(0), st.integers(0, len(TUPLES) - 1)),
        st.integers(0, 11),
        st.booleans(),
        st.one_of(st.just(0), st.integers(0, len(ISNS) - 1)),
    ),
    min_size=1,
    max_size=40,
)
