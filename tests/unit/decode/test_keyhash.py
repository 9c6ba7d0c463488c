"""The 64-bit mix of flow-key columns: equal keys hash equal, and the hash tells
apart what grouping must tell apart (which column a value is in, every bit)."""

from __future__ import annotations

import numpy as np

from portmatrix.decode.keyhash import mix


def test_equal_keys_give_equal_hashes_and_the_same_on_every_call():
    rng = np.random.default_rng(7)
    a = rng.integers(0, 2**63, size=(3, 1000), dtype=np.uint64)
    keys = [np.concatenate([col, col]) for col in a]  # every key twice
    h = mix(*keys)
    assert h.dtype == np.uint64 and len(h) == 2000
    assert np.array_equal(h[:1000], h[1000:])
    assert np.array_equal(h, mix(*keys))


def test_distinct_keys_do_not_collide_in_practice():
    rng = np.random.default_rng(11)
    cols = rng.integers(0, 2**63, size=(5, 50_000), dtype=np.uint64)
    cols = np.unique(cols, axis=1)
    assert len(np.unique(mix(*cols))) == cols.shape[1]


def test_column_order_and_single_bits_matter():
    x, y = np.array([1, 2, 3], np.uint64), np.array([2, 1, 3], np.uint64)
    swapped = mix(x, y) != mix(y, x)
    assert swapped.tolist() == [True, True, False]  # same value in both columns: same hash
    base = np.zeros(64, np.uint64)
    bits = np.left_shift(np.uint64(1), np.arange(64, dtype=np.uint64))
    hashes = mix(base, bits)
    assert len(np.unique(hashes)) == 64 and not (hashes == mix(base, base)[0]).any()


def test_columns_of_other_integer_types_are_mixed_as_uint64():
    ports = np.array([22, 443, 65535], np.int32)
    assert np.array_equal(mix(ports), mix(ports.astype(np.uint64)))
    assert ports.dtype == np.int32  # the caller's column is left as it was
