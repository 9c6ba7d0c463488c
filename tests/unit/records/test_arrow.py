"""Arrow columns into numpy: addresses parsed once per distinct value (IPv4 as
array operations), numbers with their absent and malformed values, words."""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from portmatrix.addresses import to_int, to_text
from portmatrix.records import arrow


def texts(hi, lo, ok):
    return [
        to_text((int(h) << 64) | int(low)) if o else None
        for h, low, o in zip(hi, lo, ok, strict=True)
    ]


def test_addresses():
    values = [
        "10.0.0.1",
        "255.255.255.255",
        "1.2.3.256",
        "fd00::1",
        None,
        "x",
        "010.1.1.1",
        "0.0.0.0",
        "::ffff:1.2.3.4",
        " 10.0.0.2 ",
        "10.0.0.1",
    ]
    got = texts(*arrow.address_columns(pa.array(values)))
    assert got == [
        "10.0.0.1",
        "255.255.255.255",
        None,
        "fd00::1",
        None,
        None,
        None,
        "0.0.0.0",
        "1.2.3.4",
        "10.0.0.2",
        "10.0.0.1",
    ]
    encoded = pa.array(values).dictionary_encode()  # dictionary columns, as CSV may give
    assert texts(*arrow.address_columns(encoded)) == got


@given(st.lists(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), max_size=30))
def test_addresses_equal_the_standard_library(addresses):
    hi, lo, ok = arrow.address_columns(pa.array([str(a) for a in addresses], pa.string()))
    assert ok.all()
    assert [(int(h) << 64) | int(low) for h, low in zip(hi, lo, strict=True)] == [
        to_int(ipaddress.ip_address(a)) for a in addresses
    ]


def test_numbers_and_malformed():
    values, present = arrow.numbers(
        pa.array(["12", " 7 ", None, "abc", "-3", "99999999999999999999"])
    )
    assert values.tolist() == [12, 7, 0, 0, -3, 0]
    assert present.tolist() == [True, True, False, False, True, False]
    assert arrow.malformed(pa.array(["12", None, "abc", " 4"])).tolist() == [
        False,
        False,
        True,
        False,
    ]
    ints, present = arrow.numbers(pa.array([5, None, 7], pa.int64()).slice(1), absent=-1)
    assert (ints.tolist(), present.tolist()) == ([-1, 7], [False, True])
    assert arrow.numbers(pa.array([1.9, 2.0]))[0].tolist() == [1, 2]
    assert not arrow.malformed(pa.array([1, 2])).any()


def test_words_and_times():
    status = arrow.words(pa.array(["OK", "nodata", None, " SKIPDATA"]))
    assert arrow.among(status, "OK").tolist() == [True, False, False, False]
    assert arrow.among(status, "NODATA", "SKIPDATA").tolist() == [False, True, False, True]
    ns, ok = arrow.times(pa.array(["2024-03-01T10:00:00.5Z", "2024-03-01T10:00:00", "soon", None]))
    assert ok.tolist() == [True, True, False, False]
    assert ns[:2].tolist() == [1_709_287_200_500_000_000, 1_709_287_200_000_000_000]
    assert np.array_equal(ns[2:], [0, 0])
