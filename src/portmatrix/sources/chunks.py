"""Read a capture as a stream of large chunks and cut them into record batches.

A reader walks the records of each chunk; the incomplete record at the end of
a chunk is carried into the next one, so memory stays at about one chunk
whatever the file size.
"""

from __future__ import annotations

import numpy as np

from portmatrix.sources.base import PAD

CHUNK = 8 << 20


def padded(buf: bytes | bytearray | memoryview, end: int) -> np.ndarray:
    """The first `end` bytes of `buf` as a uint8 array followed by PAD zero bytes."""
    data = np.zeros(end + PAD, dtype=np.uint8)
    data[:end] = np.frombuffer(buf, dtype=np.uint8, count=end)
    return data


def gather_u32(data: np.ndarray, pos: np.ndarray, little: bool) -> np.ndarray:
    """uint32 values at byte positions `pos` of `data` (any alignment)."""
    b = [data[pos + i].astype(np.uint32) for i in range(4)]
    if little:
        return b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)
    return (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]


def gather_u16(data: np.ndarray, pos: np.ndarray, little: bool) -> np.ndarray:
    b0, b1 = data[pos].astype(np.uint32), data[pos + 1].astype(np.uint32)
    return (b0 | (b1 << 8)) if little else ((b0 << 8) | b1)
