"""The SHA-256 of each input, computed as it is read (reports carry it, so a
finding can be tied to the exact file it came from)."""

from __future__ import annotations

import hashlib

from portmatrix.sources.workers import usable_cpus


class HashingReader:
    """A binary stream that hashes what passes through it (SHA-256 of the input file).

    With a spare CPU, hashing runs on a worker thread (hashlib releases the GIL
    on large buffers), so it overlaps with decoding instead of adding to it;
    buffers handed to the worker are never written again by the readers. On a
    single CPU a thread cannot overlap anything and only costs switches and
    cache misses, so each buffer is hashed as it is read, while it is in cache.

    The worker's queue is bounded: a read faster than hashing (a file of blocks
    the reader skips, the rest of a file after damage) waits for it instead of
    holding the file in memory.
    """

    BACKLOG = 4  # buffers (a chunk each) waiting to be hashed, at most

    def __init__(self, raw, enabled: bool = True) -> None:
        """`enabled` False: count only (a live stream is no file to tie a digest to)."""
        import queue
        import threading

        self.raw = raw
        self.hash = hashlib.sha256()
        self.count = 0
        self.enabled = enabled
        self._thread = None
        self._inline = True  # hash in the reading thread (no worker, or it has stopped)
        if enabled and usable_cpus() > 1:
            self._inline = False
            self._queue: queue.Queue = queue.Queue(maxsize=self.BACKLOG)
            self._thread = threading.Thread(target=self._work, daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while (data := self._queue.get()) is not None:
            self.hash.update(data)
            self._queue.task_done()
        self._queue.task_done()

    def settle(self) -> None:
        """Wait until every buffer handed over is hashed: then it may be written again."""
        if not self._inline:
            self._queue.join()

    def _hash(self, data) -> None:
        if not self.enabled:
            return
        if self._inline:
            self.hash.update(data)
        else:
            self._queue.put(data)

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data:
            self._hash(data)
            self.count += len(data)
        return data

    def readinto(self, buf) -> int:
        n = self.raw.readinto(buf) or 0
        if n:
            self._hash(memoryview(buf)[:n])
            self.count += n
        return n

    def read1(self, n: int = -1) -> bytes:
        data = self.raw.read1(n) if hasattr(self.raw, "read1") else self.raw.read(n)
        if data:
            self._hash(data)
            self.count += len(data)
        return data

    def fileno(self) -> int:
        return self.raw.fileno()

    def readinto1(self, buf) -> int:
        """At most one read of the underlying stream: what a pipe has now."""
        read = getattr(self.raw, "readinto1", self.raw.readinto)
        n = read(buf) or 0
        if n:
            self._hash(memoryview(buf)[:n])
            self.count += n
        return n

    def hexdigest(self) -> str:
        """Finish: hash the rest of the file, then the digest of all of it. The rest
        is hashed here, as it is read: nothing else would overlap with it."""
        self.stop()
        while data := self.raw.read(1 << 20):
            self._hash(data)
            self.count += len(data)
        return self.hash.hexdigest() if self.enabled else ""

    def stop(self) -> None:
        """Stop the hashing thread, if any (the digest is then of what was read)."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._inline = True

    def close(self) -> None:
        """Stop the hashing thread and close the stream."""
        self.stop()
        self.raw.close()


class FileDigest:
    """The SHA-256 of a whole file, taken on a thread of its own (hashlib lets go
    of the GIL): for a file whose spans other processes read, hashed here
    meanwhile. `close` stops it between two blocks, on every path; a digest
    stopped early is "" (nothing to tie a report to). The file is read, not
    mapped: mapping would save the copy (a fifth of the hashing's time), but a
    file cut shorter while mapped (a capture still being written or rotated)
    would kill the process with SIGBUS."""

    BLOCK = 8 << 20

    def __init__(self, path: str) -> None:
        import threading

        self.path = path
        self._stop = threading.Event()
        self._digest = ""
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        hash_ = hashlib.sha256()
        buf = bytearray(self.BLOCK)
        view = memoryview(buf)
        try:
            with open(self.path, "rb", buffering=0) as fh:
                while n := fh.readinto(buf):
                    if self._stop.is_set():
                        return
                    hash_.update(view[:n])
        except OSError as exc:
            self._error = exc
            return
        self._digest = hash_.hexdigest()

    def hexdigest(self) -> str:
        """Wait for it; raises the OSError that stopped the reading, if any."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._digest

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
