"""Vectorized reads of big-endian fields at many byte positions at once.

Positions are clipped to the array so a garbage length can never index out of
bounds; whether a field was really captured is the caller's check
(`pos + size <= end`).
"""

from __future__ import annotations

import numpy as np

_OFFSETS = {n: np.arange(n, dtype=np.int64) for n in (2, 4, 8, 16)}


def _clip(data: np.ndarray, pos: np.ndarray, size: int) -> np.ndarray:
    return np.clip(pos, 0, len(data) - size)


def u8(data: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return data[_clip(data, pos, 1)]


def be(data: np.ndarray, pos: np.ndarray, size: int) -> np.ndarray:
    """Unsigned big-endian integers of `size` bytes (2, 4 or 8) as uint64."""
    idx = _clip(data, pos, size)[:, None] + _OFFSETS[size]
    raw = np.ascontiguousarray(data[idx])
    return raw.view(f">u{size}").reshape(-1).astype(np.uint64)


def be16(data: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return be(data, pos, 2).astype(np.int64)


def be32(data: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return be(data, pos, 4).astype(np.int64)


def le32(data: np.ndarray, pos: np.ndarray) -> np.ndarray:
    idx = _clip(data, pos, 4)[:, None] + _OFFSETS[4]
    return np.ascontiguousarray(data[idx]).view("<u4").reshape(-1).astype(np.int64)
