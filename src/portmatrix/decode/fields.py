"""Vectorized reads of fields (big-endian unless asked) at many byte positions at once.

A field of 2, 4 or 8 bytes is read through a view of the packet buffer whose
items overlap (stride 1 byte), so reading it at n positions is one gather.
Positions are clamped to the buffer so a garbage length can never index out
of bounds; whether a field was really captured is the caller's check
(`pos + size <= end`).
"""

from __future__ import annotations

import numpy as np


def _view(data: np.ndarray, size: int, dtype: str) -> np.ndarray:
    count = max(len(data) - size + 1, 1)
    if len(data) < size:
        data = np.zeros(size, np.uint8)
    return np.ndarray(shape=(count,), dtype=dtype, buffer=data, offset=0, strides=(1,))


def u8(data: np.ndarray, pos: np.ndarray) -> np.ndarray:
    if not len(data):
        return np.zeros(len(pos), np.uint8)
    return data[np.minimum(pos, len(data) - 1)]


def uint(data: np.ndarray, pos: np.ndarray, size: int, little: bool = False) -> np.ndarray:
    """Unsigned integers of `size` bytes (2, 4 or 8) at `pos`, as int64 (uint64 for 8)."""
    view = _view(data, size, f"{'<' if little else '>'}u{size}")
    values = view[np.minimum(pos, len(view) - 1)]
    return values.astype(np.uint64 if size == 8 else np.int64)


def be(data: np.ndarray, pos: np.ndarray, size: int) -> np.ndarray:
    """Unsigned big-endian integers of `size` bytes (2, 4 or 8) as uint64."""
    view = _view(data, size, f">u{size}")
    return view[np.minimum(pos, len(view) - 1)].astype(np.uint64)


def be16(data: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return uint(data, pos, 2)


def be32(data: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return uint(data, pos, 4)


def le32(data: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return uint(data, pos, 4, little=True)


def any_of(values: np.ndarray, choices) -> np.ndarray:
    """`np.isin` for a handful of choices, without its sort (much faster per batch)."""
    choices = tuple(choices)
    out = values == choices[0]
    for choice in choices[1:]:
        out |= values == choice
    return out
