"""Vectorized field reads: every width and byte order at many positions at once,
checked against struct; positions past the buffer are clamped, never raised."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from portmatrix.decode.fields import any_of, be, be16, be32, le32, u8, uint

DATA = bytes(range(7, 7 + 40)) + bytes([0xFF] * 8)
BUF = np.frombuffer(DATA, np.uint8)
POS = np.arange(0, len(DATA) - 8 + 1)


@pytest.mark.parametrize(
    ("read", "fmt"),
    [
        (be16, ">H"),
        (be32, ">I"),
        (le32, "<I"),
        (lambda d, p: uint(d, p, 2, little=True), "<H"),
        (lambda d, p: uint(d, p, 8), ">Q"),
        (lambda d, p: be(d, p, 8), ">Q"),
        (lambda d, p: be(d, p, 4), ">I"),
    ],
    ids=["be16", "be32", "le32", "le16", "uint64", "be64", "be-4"],
)
def test_every_width_and_order_at_every_position(read, fmt):
    got = read(BUF, POS)
    expected = [struct.unpack_from(fmt, DATA, p)[0] for p in POS.tolist()]
    assert got.tolist() == expected


def test_result_types_hold_the_largest_values():
    assert be16(BUF, POS).dtype == np.int64 and be32(BUF, POS).dtype == np.int64
    assert uint(BUF, POS, 8).dtype == np.uint64 and be(BUF, POS, 2).dtype == np.uint64
    assert int(uint(BUF, np.array([40]), 8)[0]) == 2**64 - 1  # no sign, no overflow


def test_u8():
    assert u8(BUF, np.array([0, 3, 47])).tolist() == [7, 10, 0xFF]


def test_positions_past_the_end_are_clamped_not_raised():
    end = np.array([len(DATA) - 1, len(DATA) + 100, 10**9])
    assert u8(BUF, end).tolist() == [0xFF] * 3
    assert be16(BUF, end).tolist() == [0xFFFF] * 3  # the last whole field
    assert be32(BUF, end).tolist() == [0xFFFFFFFF] * 3


def test_buffers_shorter_than_the_field_or_empty():
    short = np.frombuffer(b"\x01", np.uint8)
    assert be32(short, np.array([0, 5])).tolist() == [0, 0]
    empty = np.zeros(0, np.uint8)
    assert u8(empty, np.array([0, 1])).tolist() == [0, 0]
    assert be16(empty, np.array([0])).tolist() == [0]
    assert be16(BUF, np.zeros(0, np.int64)).tolist() == []


def test_any_of_is_isin():
    values = np.array([0x0800, 0x86DD, 0x8100, 0x0806, 0x88A8, 7])
    for choices in [(0x8100,), (0x8100, 0x88A8), [0x0800, 0x86DD, 1], range(5, 9)]:
        assert any_of(values, choices).tolist() == np.isin(values, list(choices)).tolist()
