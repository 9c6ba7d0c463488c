"""Read a capture as a stream of large chunks (numpy arrays, reused once their
reader is done with them: fresh pages cost the kernel zeroing each one).

A reader walks the complete records of each chunk; the incomplete record at
its end is carried to the front of the next chunk, so memory stays at about
one chunk whatever the file size. Bytes are read straight into the array
(`readinto`): no copies besides that small carried tail. A live stream gives
whatever a read brings, so no packet waits for a full chunk.
"""

from __future__ import annotations

import contextlib
import queue
import select
import threading
import time
from collections.abc import Callable

import numpy as np

CHUNK = 8 << 20
# The longest record (pcap) or block (pcapng) a reader waits for: a length beyond
# it is damage, not a packet (Wireshark's own ceiling for IP link types is 256 KiB),
# and waiting for it would hold the rest of the file in memory.
MAX_RECORD = 16 << 20


class Chunks:
    """Successive chunks of a stream, each starting with the tail the caller kept.

    Blocks are read with room in front for the carried tail, so joining them
    copies only the tail. With `ahead`, a thread reads the next blocks while the
    current one is decoded: gzip inflation (and pipe reads) release the GIL, so
    they overlap with the numpy work instead of adding to it. Plain files read
    so fast that it is not worth the extra memory there.
    """

    HEADROOM = 1 << 20  # room for a carried tail (an incomplete record) before a block
    LINGER = 0.05  # seconds a live read gathers more bytes after the first
    AHEAD = 2  # blocks read ahead

    def __init__(self, stream, head: bytes, chunk: int | None = None, ahead: bool = False) -> None:
        self.stream = stream
        self.chunk = chunk or CHUNK
        self.tail = np.frombuffer(head, np.uint8)
        self.eof = False
        self.live = False  # return whatever a read brings, do not wait for a full chunk
        self._walked = False  # whether the reader has seen the head yet
        # Set by a caller that is done with each chunk before asking for the next: the
        # blocks are then reused (fresh memory costs the kernel zeroing every page);
        # called before a block is written again, it waits for whoever else reads
        # the blocks (the hashing thread).
        self.settle: Callable[[], None] | None = None
        self._spare: list[np.ndarray] = []
        self._current: np.ndarray | None = None
        self._thread = None
        if ahead:
            self._blocks: queue.Queue = queue.Queue(maxsize=self.AHEAD)
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._read_ahead, daemon=True)
            self._thread.start()

    def _read_block(self) -> tuple[np.ndarray, int]:
        if self._spare and self.settle is not None and self._thread is None:
            self.settle()
            block = self._spare.pop()
        else:
            block = np.empty(self.HEADROOM + self.chunk, np.uint8)
        view = memoryview(block)[self.HEADROOM :]
        if self.live:
            return block, self._read_live(view)
        got = 0
        while got < self.chunk:
            n = self.stream.readinto(view[got:])
            if not n:
                break
            got += n
        return block, got

    def _read_live(self, view) -> int:
        """A live stream: wait for the first bytes, then gather what else arrives
        within LINGER seconds (or a chunk), so batches are big enough to decode
        efficiently and no packet waits longer than that."""
        got = self.stream.readinto1(view) or 0
        if not got:
            return 0
        deadline = time.monotonic() + self.LINGER
        fd = self.stream.fileno()
        while got < self.chunk:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                break
            n = self.stream.readinto1(view[got:])
            if not n:
                break
            got += n
        return got

    def _read_ahead(self) -> None:
        try:
            while not self._stop.is_set():
                block, got = self._read_block()
                self._blocks.put((block, got))
                if got == 0 or (got < self.chunk and not self.live):
                    return
        except BaseException as exc:  # handed to the reader, raised there
            self._blocks.put((exc, 0))

    def next(self) -> np.ndarray:
        """The carried tail plus up to one chunk more; `eof` once nothing more came.
        Live, the head comes first on its own: it may hold whole packets (the read
        that saw the capture start), which must not wait for the next one to come."""
        if self.live and not self._walked:
            self._walked = True
            if len(self.tail):
                return self.tail.copy()
        self._walked = True
        block, got = self._blocks.get() if self._thread else self._read_block()
        if isinstance(block, BaseException):
            self.eof = True
            raise block
        if got == 0 or (got < self.chunk and not self.live):
            self.eof = True
        if self.settle is not None and self._thread is None:
            if self._current is not None:
                self._spare.append(self._current)  # its chunk is done with
            self._current = block
        keep = len(self.tail)
        if keep <= self.HEADROOM:
            start = self.HEADROOM - keep
            block[start : self.HEADROOM] = self.tail
            return block[start : self.HEADROOM + got]
        return np.concatenate([self.tail, block[self.HEADROOM : self.HEADROOM + got]])

    def keep(self, data: np.ndarray, consumed: int) -> None:
        """Carry `data[consumed:]` (an incomplete record) into the next chunk."""
        self.tail = data[consumed:].copy()

    def close(self) -> None:
        """Stop reading ahead (a reader that stops early calls this)."""
        if self._thread is None:
            return
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._blocks.get(timeout=0.05)
