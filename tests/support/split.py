"""One capture cut into several files, for the tests that read files in parallel
(a pool of processes in tests/unit/flows, a Dask cluster in tests/conformance):
whichever way the parts are read, the flows must be those of the whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scapy.layers.inet import ICMP, TCP, UDP

from portmatrix.testing.captures import ether, frames, ip, tcp_session, write_pcap

C, S, C6, S6 = "10.0.0.1", "10.0.0.2", "2001:db8::1", "2001:db8::2"
PART = 9  # packets per file


def mixed_packets():
    """Frames with timestamps: TCP (v4, v6, refused, VLAN), UDP, ICMP."""
    packets = [
        *tcp_session(C, S, 40000, 443, data=[b"a", b"b", b"c"]),  # 12 packets: spans files
        ip(C, S) / UDP(sport=40001, dport=53) / b"q",
        ip(S, C) / UDP(sport=53, dport=40001) / b"r",
        ip(C, S) / ICMP(type=8, id=9, seq=1),
        ip(S, C) / ICMP(type=0, id=9, seq=1),
        *tcp_session(C6, S6, 40002, 22),
        ip(C, S) / TCP(sport=40003, dport=8443, flags="S"),
        ip(S, C) / TCP(sport=8443, dport=40003, flags="RA", ack=1),
        *tcp_session(C, S, 40004, 80, handshake=False, close="open"),
    ]
    out = [ether(p) for p in packets]
    out += [ether(p, vlans=[20]) for p in tcp_session(C, S, 40005, 7000)]
    return frames(out)


def write_split(folder: Path) -> tuple[list[str], str]:
    """(paths of consecutive parts of PART packets, path of the whole capture)."""
    packets = mixed_packets()
    paths = [
        str(write_pcap(folder / f"part{k:02d}.pcap", packets[start : start + PART]))
        for k, start in enumerate(range(0, len(packets), PART))
    ]
    whole = str(write_pcap(folder / "whole.pcap", packets))
    return paths, whole


FRAME_COLUMNS = {f"{kind}{j}" for kind in ("frame", "file") for j in range(3)}


def assert_same_flows(a, b, skip=frozenset()):
    """Two Traffic have the same flows, column by column (but the `skip` ones)."""
    assert set(a.flows.cols) == set(b.flows.cols)
    for name in a.flows.cols:
        if name not in skip:
            assert np.array_equal(a.flows[name], b.flows[name]), name
            assert a.flows[name].dtype == b.flows[name].dtype, name
