"""Where a flow table keeps its records: one array of structs that grows in place.

A record is one struct (`DTYPE`, the columns of `records.RECORD` and `prev`,
the place of its key's record before it or -1):
the compiled table updates a record with a few cache misses where a struct of
arrays would cost one per column. The array lives in a large
reservation of address space (an anonymous mapping the kernel backs with
memory only where it is written), so growing it never copies the records nor
holds them twice, views of it stay valid, and `release` hands the pages of
records no longer needed back at once (a finished table gives its memory back
block by block as it becomes flows). Where no such reservation can be made, a
plain numpy array doubles instead.
"""

from __future__ import annotations

import contextlib
import mmap
import sys

import numpy as np

from portmatrix.flows.records import RECORD, Records

DTYPE = np.dtype(
    [(name, kind) for name, kind in RECORD.items() if name != "seq"] + [("prev", np.int64)],
    align=True,
)
STORED = tuple(name for name in RECORD if name != "seq")

# Linux's MAP_NORESERVE: address space only; memory is committed page by page
# as it is written (Python's mmap module names the flag from 3.13 on).
_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000 if sys.platform == "linux" else None)
RESERVE = 1 << 36  # bytes of address space per table: ~390 million records
PAGE = mmap.PAGESIZE


class RecordStore:
    """Records `array[:used]`; capacity grows on demand (`reserve`)."""

    MOVE = 1 << 16  # records moved at once by `keep`

    def __init__(self, capacity: int = 0) -> None:
        self._map: mmap.mmap | None = None
        self.array = np.zeros(0, DTYPE)
        self.used = 0
        self._mapped = _NORESERVE is not None
        self.reserve(capacity)

    def __len__(self) -> int:
        return self.used

    @property
    def capacity(self) -> int:
        return len(self.array)

    def reserve(self, need: int) -> None:
        """Room for at least `need` records, the ones there kept."""
        if need <= self.capacity:
            return
        if self._mapped:
            size = max(RESERVE, 2 * need * DTYPE.itemsize)
            with contextlib.suppress(OSError, OverflowError, ValueError):
                flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _NORESERVE
                grown = mmap.mmap(-1, size, flags=flags)
                array = np.frombuffer(grown, DTYPE, count=size // DTYPE.itemsize)
                array[: self.used] = self.array[: self.used]
                self._map, self.array = grown, array
                return
            self._mapped = False  # no reservations here: plain arrays from now on
        array = np.zeros(max(need, 2 * self.capacity, 1024), DTYPE)
        array[: self.used] = self.array[: self.used]
        self._map, self.array = None, array

    def column(self, name: str) -> np.ndarray:
        """A view of one column of the records (writes go through)."""
        return self.array[name][: self.used]

    def records(self) -> Records:
        """Every column as a view; `seq` is each record's place."""
        out = Records({name: self.array[name][: self.used] for name in STORED})
        out["seq"] = np.arange(self.used, dtype=np.int64)
        return out

    def append(self, added: Records, prev: np.ndarray | int = -1) -> None:
        """Records after the last; `prev`: each one's key's record before it."""
        need = self.used + len(added)
        self.reserve(need)
        part = self.array[self.used : need]
        for name in STORED:
            part[name] = added[name]
        part["prev"] = prev
        self.used = need

    def keep(self, rows: np.ndarray) -> None:
        """Keep only the records at `rows` (ascending), at the front. Moved a slice at
        a time (a record only moves forward, never over one still to move), so
        memory stays at the store's however many are kept. `prev` is left as it
        was: the caller renumbers it."""
        n = len(rows)
        for lo in range(0, n, self.MOVE):
            part = rows[lo : lo + self.MOVE]
            self.array[lo : lo + len(part)] = self.array[part]
        old, self.used = self.used, n
        self.release(self.used, old)

    def release(self, lo: int, hi: int) -> None:
        """The records lo:hi are no longer needed: give their memory back (whole
        pages only; their content is then undefined)."""
        if self._map is None or hi <= lo:
            return
        start = -(-lo * DTYPE.itemsize // PAGE) * PAGE
        end = hi * DTYPE.itemsize // PAGE * PAGE
        if end > start:
            self._map.madvise(mmap.MADV_DONTNEED, start, end - start)

    def clear(self) -> None:
        """Forget every record and give all memory back."""
        self._map, self.array, self.used = None, np.zeros(0, DTYPE), 0
        self._mapped = _NORESERVE is not None

    def __getstate__(self) -> dict:
        # A mapping cannot be pickled: the records are (pickling copies them once).
        return {"records": self.array[: self.used]}

    def __setstate__(self, state: dict) -> None:
        # The unpickled array is the store (no second copy while a worker's table
        # arrives); it moves into a reservation when it grows.
        self.__init__()
        self.array = state.pop("records")
        self.used = len(self.array)
