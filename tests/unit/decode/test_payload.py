"""Where a row's payload is: the quick reading of common frames agrees with the
general decoders, Ethernet padding and IP options are not payload, and rows
whose payload cannot be found are not readable."""

from __future__ import annotations

import numpy as np
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
from scapy.layers.l2 import GRE, Dot1Q, Ether

from portmatrix.decode import decode
from portmatrix.decode import payload as pl
from portmatrix.testing.captures import raw_batch

LOAD = b"the first bytes of the payload"


def frames():
    """(frame, link type, expected payload) of many layouts."""
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    tcp = TCP(sport=40000, dport=443, flags="PA")
    udp = UDP(sport=40000, dport=53)
    return [
        (eth / IP(src="10.0.0.1", dst="10.0.0.2") / tcp / LOAD, 1, LOAD),
        (eth / Dot1Q(vlan=7) / IP(src="10.0.0.1", dst="10.0.0.2") / udp / LOAD, 1, LOAD),
        (eth / IPv6(src="fd00::1", dst="fd00::2") / tcp / LOAD, 1, LOAD),
        # Extension headers and IP options: the general decoders' case.
        (eth / IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrHopByHop() / udp / LOAD, 1, LOAD),
        (eth / IP(src="10.0.0.1", dst="10.0.0.2", options=b"\x01" * 4) / tcp / LOAD, 1, LOAD),
        # TCP options are the TCP header's: payload after them.
        (eth / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(options=[("MSS", 1460)]) / LOAD, 1, LOAD),
        # A short frame padded to Ethernet's minimum: the padding is no payload.
        (bytes(eth / IP(src="10.0.0.1", dst="10.0.0.2") / tcp / b"ab") + bytes(10), 1, b"ab"),
        (eth / IP(src="10.0.0.1", dst="10.0.0.2") / tcp, 1, b""),
        # Raw IP and Linux cooked frames go through the link decoders.
        (IP(src="10.0.0.1", dst="10.0.0.2") / tcp / LOAD, 101, LOAD),
        (
            b"\x00\x00\x00\x01\x00\x06\x02\x00\x00\x00\x00\x01\x00\x00\x08\x00"
            + bytes(IP(src="10.0.0.1", dst="10.0.0.2") / udp / LOAD),
            113,
            LOAD,
        ),
    ]


def decoded(cases):
    raw = raw_batch([bytes(f) for f, _, _ in cases], [lt for _, lt, _ in cases])
    rows, _ = decode(raw)
    return raw, rows


def test_payloads_of_every_layout():
    cases = frames()
    raw, rows = decoded(cases)
    assert len(rows) == len(cases) and pl.readable(rows).all()
    found = pl.payloads(raw, rows, np.arange(len(rows)))
    assert [found.bytes_of(i) for i in range(len(rows))] == [want for _, _, want in cases]


def test_the_quick_reading_agrees_with_the_general_decoders():
    from portmatrix.decode import ip, link

    raw, rows = decoded(frames())
    idx = np.arange(len(rows))
    found = pl.payloads(raw, rows, idx)
    l3, kind, *_ = link.decode(raw.data, raw.offset, raw.caplen, raw.linktype)
    net = ip.network(raw.data, l3, raw.offset + raw.caplen, kind.astype(np.int64))
    assert (found.transport == net.l4pos).all()
    assert (found.stop == net.l4end).all()


def test_head_is_the_first_eight_bytes_zero_padded():
    raw, rows = decoded(frames())
    found = pl.payloads(raw, rows, np.arange(len(rows)))
    heads = found.head()
    for i in range(len(rows)):
        want = found.bytes_of(i, 8).ljust(8, b"\0")
        assert int(heads[i]) == int.from_bytes(want, "big")


def test_head_at_the_very_end_of_the_buffer():
    frame = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / b"xyz"
    raw = raw_batch([bytes(frame)])
    rows, _ = decode(raw)
    found = pl.payloads(raw, rows, np.array([0]))
    assert int(found.head()[0]) == int.from_bytes(b"xyz".ljust(8, b"\0"), "big")


def test_tunnelled_rows_are_not_readable():
    inner = IP(src="10.9.0.1", dst="10.9.0.2") / UDP(sport=1, dport=2) / LOAD
    frame = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / GRE() / inner
    raw = raw_batch([bytes(frame)])
    rows, _ = decode(raw)
    assert list(pl.readable(rows)) == [False, False]  # the GRE packet, and the one inside
