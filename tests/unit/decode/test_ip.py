"""IPv4 (options, fragments, lengths) and IPv6 (extension header chains, fragments)."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP, UDP, IPOption_NOP, IPOption_RR, IPOption_Timestamp, fragment
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    fragment6,
)
from scapy.layers.ipsec import AH

from portmatrix.decode import batch as b
from portmatrix.testing.captures import ether
from support.decoders import decoded

A6, B6 = "2001:db8::a", "2001:db8::b"


def test_ipv4_options_are_skipped():
    pkt = IP(
        src="10.1.1.1",
        dst="10.2.2.2",
        options=[IPOption_RR(routers=["1.1.1.1", "2.2.2.2"]), IPOption_NOP(), IPOption_Timestamp()],
    ) / TCP(sport=1234, dport=22, flags="S", seq=77)
    assert pkt[IP].ihl is None and len(bytes(pkt)) > 40
    (row,), counts = decoded([ether(pkt)])
    assert (row["src"], row["dst"], row["sport"], row["dport"]) == (
        "10.1.1.1",
        "10.2.2.2",
        1234,
        22,
    )
    assert row["tcp_flags"] == 0x02 and row["tcp_seq"] == 77
    assert counts.ip == 1


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda raw: bytes([0x44]) + raw[1:], "IP header length invalid"),  # ihl 4
        (lambda raw: raw[:19], "IP header cut short"),
        (lambda raw: bytes([0x4F]) + raw[1:40], "IP header cut short"),  # ihl 15 > captured
    ],
    ids=["ihl-too-small", "cut-header", "options-cut"],
)
def test_damaged_ipv4_header(mangle, reason):
    raw = bytes(IP(src="10.1.1.1", dst="10.2.2.2") / UDP(sport=1, dport=2) / (b"z" * 30))
    rows, counts = decoded([mangle(raw)], 101)
    assert rows == [] and counts.undecodable == {reason: 1}


def test_ipv6_header_cut_short():
    raw = bytes(IPv6(src=A6, dst=B6) / UDP())[:39]
    rows, counts = decoded([raw], 101)
    assert rows == [] and counts.undecodable == {"IP header cut short": 1}


def test_ethernet_padding_is_not_payload():
    # 60-byte minimum frame: the padding must not be read as transport data.
    pkt = ether(IP(src="10.1.1.1", dst="10.2.2.2") / UDP(sport=7, dport=9))
    frame = bytes(pkt) + b"\xff" * (60 - len(pkt))
    (row,), _ = decoded([frame])
    assert (row["sport"], row["dport"], row["wirelen"]) == (7, 9, 60)


def test_zero_total_length_trusts_the_capture():
    # TCP segmentation offload writes 0 in the total length of large segments.
    pkt = (
        IP(src="10.1.1.1", dst="10.2.2.2", len=0)
        / TCP(sport=5, dport=6, flags="PA")
        / (b"d" * 3000)
    )
    (row,), _ = decoded([bytes(pkt)], 101)
    assert (row["sport"], row["dport"], row["tcp_flags"]) == (5, 6, 0x18)


def test_ipv4_fragments():
    big = IP(src="10.1.1.1", dst="10.2.2.2", id=4242) / UDP(sport=2049, dport=789) / (b"n" * 3000)
    frags = fragment(big, fragsize=1000)
    assert len(frags) == 4
    rows, counts = decoded([ether(f) for f in frags])
    assert counts.ip == 4
    assert [r["frag"] for r in rows] == [b.FIRST_FRAGMENT] + [b.LATER_FRAGMENT] * 2 + [
        b.LAST_FRAGMENT
    ]
    assert {r["frag_id"] for r in rows} == {4242}
    assert (rows[0]["sport"], rows[0]["dport"]) == (2049, 789)
    # Later fragments carry no transport header: the decoder leaves the ports at 0
    # (FlowTable fills them in from the first fragment, see test_reassembly.py).
    assert all((r["sport"], r["dport"]) == (0, 0) for r in rows[1:])
    assert all(r["proto"] == 17 for r in rows)


def test_unfragmented_ipv4_with_df():
    (row,), _ = decoded([ether(IP(src="10.1.1.1", dst="10.2.2.2", flags="DF") / UDP())])
    assert row["frag"] == b.NOT_FRAGMENT


@pytest.mark.parametrize(
    "chain",
    [
        [IPv6ExtHdrHopByHop()],
        [IPv6ExtHdrRouting(addresses=["2001:db8::1", "2001:db8::2"])],
        [IPv6ExtHdrDestOpt()],
        # scapy leaves AH's next header at 0 when its length is given: set both.
        [AH(nh=17, spi=1, seq=1, icv=b"\0" * 12, payloadlen=4)],
        [IPv6ExtHdrFragment(offset=0, m=0, id=7)],  # an atomic fragment
        [
            IPv6ExtHdrHopByHop(),
            IPv6ExtHdrDestOpt(),
            IPv6ExtHdrRouting(addresses=["2001:db8::1"]),
            IPv6ExtHdrFragment(offset=0, m=0, id=9),
            AH(nh=60, spi=2, seq=3, icv=b"\0" * 12, payloadlen=4),
            IPv6ExtHdrDestOpt(),
        ],
    ],
    ids=["hop-by-hop", "routing", "dest-opts", "ah", "fragment", "all"],
)
def test_ipv6_extension_headers(chain):
    pkt = IPv6(src=A6, dst=B6)
    for header in chain:
        pkt = pkt / header
    pkt = pkt / UDP(sport=546, dport=547) / b"dhcp"
    (row,), _ = decoded([ether(pkt)])
    assert (row["src"], row["dst"], row["proto"], row["sport"], row["dport"]) == (
        A6,
        B6,
        17,
        546,
        547,
    )
    assert row["frag"] == b.NOT_FRAGMENT


def test_ipv6_extension_header_cut_short():
    pkt = IPv6(src=A6, dst=B6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / UDP()
    raw = bytes(pkt)[: 40 + 8 + 4]
    rows, counts = decoded([raw], 101)
    assert rows == [] and counts.undecodable == {"IP header cut short": 1}


def test_ipv6_fragments():
    big = (
        IPv6(src=A6, dst=B6)
        / IPv6ExtHdrFragment(id=0xABCDEF)
        / UDP(sport=9, dport=10)
        / (b"v" * 3000)
    )
    frags = fragment6(big, 1280)
    assert len(frags) == 3
    rows, _ = decoded([ether(f) for f in frags])
    assert [r["frag"] for r in rows] == [b.FIRST_FRAGMENT, b.LATER_FRAGMENT, b.LAST_FRAGMENT]
    assert {r["frag_id"] for r in rows} == {0xABCDEF}
    assert (rows[0]["sport"], rows[0]["dport"]) == (9, 10)
    assert all(r["proto"] == 17 and r["sport"] == 0 for r in rows[1:])


def test_ipv6_fragment_after_other_headers():
    big = (
        IPv6(src=A6, dst=B6)
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrFragment(id=5)
        / TCP(sport=80, dport=4000, flags="A")
        / (b"w" * 2000)
    )
    rows, _ = decoded([ether(f) for f in fragment6(big, 1280)])
    assert [(r["frag"], r["proto"], r["sport"]) for r in rows] == [
        (b.FIRST_FRAGMENT, 6, 80),
        (b.LAST_FRAGMENT, 6, 0),
    ]


def test_more_ipv6_extension_headers_than_the_limit_are_undecodable():
    def chain(n):
        pkt = IPv6(src=A6, dst=B6)
        for _ in range(n):
            pkt = pkt / IPv6ExtHdrDestOpt()
        return ether(pkt / UDP(sport=1, dport=53))

    rows, counts = decoded([chain(b.MAX_EXT), chain(b.MAX_EXT + 1), chain(300)])
    assert [(r["frame"], r["proto"], r["dport"]) for r in rows] == [(1, 17, 53)]
    assert counts.undecodable == {b.UNDECODABLE[b.TOO_MANY_EXT]: 2}
