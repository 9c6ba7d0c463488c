import ipaddress

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portmatrix.addresses import (
    V4_MAPPED,
    AddressIndex,
    Entry,
    parse_entry,
    split_int,
    to_int,
    to_text,
)
from portmatrix.textforms import address_texts

MAX = (1 << 128) - 1


def ip(text: str) -> int:
    return to_int(ipaddress.ip_address(text))


# --- single addresses -------------------------------------------------------------------


def test_ipv4_is_mapped_into_ipv6():
    assert ip("10.0.0.1") == V4_MAPPED | 0x0A000001
    assert ip("10.0.0.1") == int(ipaddress.IPv6Address("::ffff:10.0.0.1"))
    assert ip("fd00::5") == int(ipaddress.IPv6Address("fd00::5"))


@pytest.mark.parametrize("text", ["0.0.0.0", "10.1.2.3", "255.255.255.255", "fd00::5", "::1", "::"])
def test_to_text_inverts_to_int(text):
    assert to_text(ip(text)) == text


def test_split_int_and_texts_round_trip():
    values = [ip("10.0.0.1"), ip("fd00::5"), 0, MAX]
    hi, lo = split_int(values)
    assert hi.dtype == np.uint64 and lo.dtype == np.uint64
    assert [(int(h) << 64) | int(lw) for h, lw in zip(hi, lo, strict=True)] == values
    assert address_texts(hi, lo) == [
        "10.0.0.1",
        "fd00::5",
        "::",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ]


# --- entries ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("10.0.0.1", "10.0.0.1", "10.0.0.1"),
        (" 10.0.0.1 ", "10.0.0.1", "10.0.0.1"),
        ("10.1.0.0/16", "10.1.0.0", "10.1.255.255"),
        ("10.1.2.3/16", "10.1.0.0", "10.1.255.255"),  # host bits set: the block anyway
        ("10.0.0.11-10.0.0.18", "10.0.0.11", "10.0.0.18"),
        ("10.0.0.11 - 10.0.0.18", "10.0.0.11", "10.0.0.18"),
        ("10.0.0.7-10.0.0.7", "10.0.0.7", "10.0.0.7"),
        ("fd00::5", "fd00::5", "fd00::5"),
        ("fd00::/64", "fd00::", "fd00::ffff:ffff:ffff:ffff"),
        ("fd00::1-fd00::ff", "fd00::1", "fd00::ff"),
        ("0.0.0.0/0", "0.0.0.0", "255.255.255.255"),
    ],
)
def test_parse_entry_intervals(text, first, last):
    entry = parse_entry(text)
    assert entry.hostname is None
    assert (entry.first, entry.last) == (ip(first), ip(last))
    assert entry.text == text.strip()


@pytest.mark.parametrize(
    ("text", "hostname"),
    [
        ("mail.example.com", "mail.example.com"),
        ("Mail.Example.COM.", "mail.example.com"),
        ("db-1.example.com", "db-1.example.com"),
        ("build-host", "build-host"),
        ("localhost", "localhost"),
    ],
)
def test_parse_entry_hostnames(text, hostname):
    assert parse_entry(text) == Entry(text, hostname=hostname)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.300", "is not an address, CIDR block, range or hostname"),
        ("1.2.3", "is not an address, CIDR block, range or hostname"),
        ("not a host!", "is not an address, CIDR block, range or hostname"),
        ("10.0.0.0/33", "is not a CIDR block"),
        ("10.0.0.0/x", "is not a CIDR block"),
        ("10.0.0.9-10.0.0.1", "ends before it starts"),
        ("10.0.0.1-fd00::1", "mixes IPv4 and IPv6"),
        ("-", "is not a range of two addresses"),
        ("10.0.0.1-", "is not a range of two addresses"),
        # A typo in a range must not pass for a hostname that nothing resolves.
        ("10.0.0.5-10.0.0.300", "is not a range of two addresses"),
        ("10.0.0.1-10.0.0", "is not a range of two addresses"),
    ],
)
def test_parse_entry_rejects(text, message):
    with pytest.raises(ValueError, match=message):
        parse_entry(text)


# --- the index --------------------------------------------------------------------------


def _index(*pairs: tuple[str, str]) -> AddressIndex:
    intervals = []
    for label, text in pairs:
        entry = parse_entry(text)
        intervals.append((label, entry.first, entry.last))
    return AddressIndex(intervals)


def _roles(index: AddressIndex, text: str) -> set[str]:
    scalar = index.set_of(index.lookup_int(ip(text)))
    hi, lo = split_int([ip(text)])
    vector = index.set_of(int(index.lookup(hi, lo)[0]))
    assert scalar == vector
    return set(scalar)


def test_empty_index_knows_nothing():
    index = AddressIndex([])
    assert index.set_of(0) == frozenset()
    assert _roles(index, "10.0.0.1") == set()
    assert _roles(index, "fd00::1") == set()
    hi, lo = split_int([])
    assert index.lookup(hi, lo).tolist() == []


def test_overlapping_cidrs_and_ranges():
    index = _index(
        ("wide", "10.0.0.0/8"),
        ("narrow", "10.1.0.0/16"),
        ("span", "10.1.255.250-10.2.0.5"),
        ("host", "10.1.255.255"),
    )
    assert _roles(index, "9.255.255.255") == set()
    assert _roles(index, "10.0.0.0") == {"wide"}
    assert _roles(index, "10.1.0.0") == {"wide", "narrow"}
    assert _roles(index, "10.1.255.249") == {"wide", "narrow"}
    assert _roles(index, "10.1.255.250") == {"wide", "narrow", "span"}
    assert _roles(index, "10.1.255.255") == {"wide", "narrow", "span", "host"}
    assert _roles(index, "10.2.0.0") == {"wide", "span"}
    assert _roles(index, "10.2.0.5") == {"wide", "span"}
    assert _roles(index, "10.2.0.6") == {"wide"}
    assert _roles(index, "10.255.255.255") == {"wide"}
    assert _roles(index, "11.0.0.0") == set()


def test_same_label_twice_and_adjacent_blocks():
    index = _index(
        ("a", "10.0.0.0/25"),
        ("a", "10.0.0.128/25"),
        ("a", "10.0.0.64/26"),  # inside the first: still just `a`
        ("b", "10.0.0.100"),
    )
    assert _roles(index, "10.0.0.0") == {"a"}
    assert _roles(index, "10.0.0.99") == {"a"}
    assert _roles(index, "10.0.0.100") == {"a", "b"}
    assert _roles(index, "10.0.0.127") == {"a"}
    assert _roles(index, "10.0.0.128") == {"a"}
    assert _roles(index, "10.0.0.255") == {"a"}
    assert _roles(index, "10.0.1.0") == set()


def test_ipv6_and_ipv4_in_one_index():
    index = _index(
        ("v6net", "fd00::/64"),
        ("v6host", "fd00::5"),
        ("v6range", "fd00::4-fd00::1:0"),
        ("v4", "10.0.0.0/24"),
        ("mapped", "::ffff:10.0.0.1"),  # the same host as 10.0.0.1
    )
    assert _roles(index, "fd00::3") == {"v6net"}
    assert _roles(index, "fd00::4") == {"v6net", "v6range"}
    assert _roles(index, "fd00::5") == {"v6net", "v6host", "v6range"}
    assert _roles(index, "fd00::1:0") == {"v6net", "v6range"}
    assert _roles(index, "fd00::1:1") == {"v6net"}
    assert _roles(index, "fd00:0:0:1::") == set()
    assert _roles(index, "10.0.0.1") == {"v4", "mapped"}
    assert _roles(index, "10.0.0.2") == {"v4"}
    # An IPv4 address is not the IPv6 address with the same low 32 bits.
    assert _roles(index, "::10.0.0.1") == set()


def test_vectorized_lookup_of_mixed_columns():
    index = _index(("a", "10.0.0.0/8"), ("b", "fd00::/16"), ("c", "0.0.0.0"))
    values = [ip(t) for t in ("10.9.9.9", "fd00::1", "192.168.0.1", "0.0.0.0", "::1", "10.0.0.0")]
    hi, lo = split_int(values)
    got = [set(index.set_of(i)) for i in index.lookup(hi, lo).tolist()]
    assert got == [{"a"}, {"b"}, set(), {"c"}, set(), {"a"}]


def test_an_interval_over_the_whole_ipv4_space_and_beyond():
    index = AddressIndex([("all", 0, MAX), ("v4", V4_MAPPED, V4_MAPPED | 0xFFFFFFFF)])
    assert _roles(index, "::") == {"all"}
    assert _roles(index, "0.0.0.0") == {"all", "v4"}
    assert _roles(index, "255.255.255.255") == {"all", "v4"}
    assert _roles(index, "::1:0:0:0") == {"all"}  # just after the IPv4-mapped block
    assert _roles(index, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") == {"all"}


# --- the index against a slow, obvious reference ------------------------------------------


def reference(intervals: list[tuple[str, int, int]], value: int) -> frozenset[str]:
    return frozenset(label for label, first, last in intervals if first <= value <= last)


_ANCHORS = [
    0,
    V4_MAPPED - 1,
    V4_MAPPED,  # 0.0.0.0
    V4_MAPPED | 0x0A000000,  # 10.0.0.0
    V4_MAPPED | 0xFFFFFFFF,  # 255.255.255.255
    (V4_MAPPED | 0xFFFFFFFF) + 1,
    0xFD00 << 112,
    MAX,
]
addresses = st.one_of(
    st.builds(
        lambda anchor, offset: min(max(anchor + offset, 0), MAX),
        st.sampled_from(_ANCHORS),
        st.integers(-40, 40),
    ),
    st.integers(0, MAX),
)
intervals = st.builds(
    lambda label, first, length: (label, first, min(first + length, MAX)),
    st.sampled_from("abcde"),
    addresses,
    st.one_of(st.integers(0, 30), st.integers(0, 1 << 40)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(intervals, max_size=12), st.lists(addresses, min_size=1, max_size=40))
def test_index_agrees_with_reference(spans, probes):
    index = AddressIndex(spans)
    assert len(set(index.sets)) == len(index.sets), "each set has one id"
    hi, lo = split_int(probes)
    vector = index.lookup(hi, lo).tolist()
    for value, set_id in zip(probes, vector, strict=True):
        expected = reference(spans, value)
        assert index.set_of(index.lookup_int(value)) == expected
        assert index.set_of(set_id) == expected
    # the edges of every interval, where an off-by-one would show
    edges = sorted({v for _, f, la in spans for v in (f - 1, f, la, la + 1) if 0 <= v <= MAX})
    if edges:
        hi, lo = split_int(edges)
        for value, set_id in zip(edges, index.lookup(hi, lo).tolist(), strict=True):
            assert index.set_of(set_id) == reference(spans, value)


def test_addresses_of_a_label():
    from portmatrix.addresses import AddressIndex, parse_entry

    entries = [("dns", "169.254.169.253"), ("a", "10.0.0.0/30"), ("b", "10.0.0.2-10.0.0.9")]
    index = AddressIndex(
        [(label, parse_entry(t).first, parse_entry(t).last) for label, t in entries]
    )
    v4 = 0xFFFF << 32
    assert index.addresses_of("dns") == [(v4 | 0xA9FEA9FD, v4 | 0xA9FEA9FD)]
    # Overlaps split the intervals; together they are the label's addresses.
    assert index.addresses_of("a") == [
        (v4 | 0x0A000000, v4 | 0x0A000001),
        (v4 | 0x0A000002, v4 | 0x0A000003),
    ]
    assert index.addresses_of("nobody") == []


def test_sizes_and_sets_between():
    from portmatrix.addresses import AddressIndex, parse_entry

    entries = {"a": ["10.0.0.0/30", "10.0.1.1"], "b": ["10.0.0.2-10.0.0.9"]}
    index = AddressIndex(
        (role, e.first, e.last) for role, texts in entries.items() for e in map(parse_entry, texts)
    )
    assert index.sizes() == {"a": 5, "b": 8}
    first, last = parse_entry("10.0.0.8/29"), parse_entry("10.0.0.200")
    assert {frozenset(index.set_of(s)) for s in index.sets_between(first.first, first.last)} == {
        frozenset({"b"}),
        frozenset(),
    }
    assert index.sets_between(last.first, last.last) == {0}
    assert AddressIndex([]).sizes() == {} and AddressIndex([]).sets_between(1, 2) == {0}
