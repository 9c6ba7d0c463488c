"""Read a capture as a stream of large chunks, each a fresh numpy array.

A reader walks the complete records of each chunk; the incomplete record at
its end is carried to the front of the next chunk, so memory stays at about
one chunk whatever the file size. Bytes are read straight into the array
(`readinto`): no copies besides that small carried tail.
"""

from __future__ import annotations

import numpy as np

CHUNK = 8 << 20


def gather_u32(data: np.ndarray, pos: np.ndarray, little: bool) -> np.ndarray:
    """uint32 values at byte positions `pos` of `data` (any alignment)."""
    idx = pos[:, None] + np.arange(4)
    return np.ascontiguousarray(data[idx]).view("<u4" if little else ">u4").reshape(-1)


def gather_u16(data: np.ndarray, pos: np.ndarray, little: bool) -> np.ndarray:
    idx = pos[:, None] + np.arange(2)
    return np.ascontiguousarray(data[idx]).view("<u2" if little else ">u2").reshape(-1)


class Chunks:
    """Successive chunks of a stream, each starting with the tail the caller kept."""

    def __init__(self, stream, head: bytes, chunk: int | None = None) -> None:
        self.stream = stream
        self.chunk = chunk or CHUNK
        self.tail = np.frombuffer(head, np.uint8)
        self.eof = False

    def next(self) -> np.ndarray:
        """The carried tail plus up to one chunk more; `eof` once nothing more came."""
        keep = len(self.tail)
        buf = np.empty(keep + self.chunk, np.uint8)
        buf[:keep] = self.tail
        view = memoryview(buf)[keep:]
        got = 0
        while got < self.chunk:
            n = self.stream.readinto(view[got:])
            if not n:
                self.eof = True
                break
            got += n
        return buf[: keep + got]

    def keep(self, data: np.ndarray, consumed: int) -> None:
        """Carry `data[consumed:]` (an incomplete record) into the next chunk."""
        self.tail = data[consumed:].copy()
