"""The decoder's two paths compared: the compiled fast path for common frames
must give exactly what the numpy reference gives."""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from portmatrix.decode import decode
from portmatrix.decode.batch import PacketBatch


def assert_same(raw) -> None:
    fast, fast_counts = decode(raw)
    ref, ref_counts = decode(raw, fast=False)
    for f in fields(PacketBatch):
        a, b = getattr(fast, f.name), getattr(ref, f.name)
        assert a.dtype == b.dtype, f.name
        np.testing.assert_array_equal(a, b, err_msg=f.name)
    assert fast_counts == ref_counts
