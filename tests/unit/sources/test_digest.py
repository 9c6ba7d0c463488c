"""HashingReader: the digest of the whole file, in bounded memory."""

from __future__ import annotations

import hashlib
import io
import threading
import time

from portmatrix.sources import digest
from portmatrix.sources.digest import HashingReader


class SlowHash:
    """A SHA-256 that takes its time, counting the buffers it was given."""

    def __init__(self) -> None:
        self.real = hashlib.sha256()
        self.done = 0

    def update(self, data) -> None:
        time.sleep(0.002)
        self.real.update(data)
        self.done += 1

    def hexdigest(self) -> str:
        return self.real.hexdigest()


def test_reading_faster_than_hashing_waits_instead_of_holding_the_file(monkeypatch):
    monkeypatch.setattr(digest, "usable_cpus", lambda: 2)  # hash on the worker thread
    data = bytes(range(256)) * 4096 * 20  # 20 MB, read 64 kB at a time
    reader = HashingReader(io.BytesIO(data))
    slow = reader.hash = SlowHash()
    behind = 0
    buf = bytearray(65536)
    read = 0
    while reader.readinto(buf):
        read += 1
        behind = max(behind, read - slow.done)
        buf = bytearray(65536)  # the worker may still hold the last one
        if read == 100:
            break
    assert behind <= HashingReader.BACKLOG + 2  # not ~100 buffers queued
    assert reader.hexdigest() == hashlib.sha256(data).hexdigest()
    assert threading.active_count() >= 1 and reader._inline


def test_the_rest_after_a_stop_is_hashed_inline():
    data = b"x" * (3 << 20)
    reader = HashingReader(io.BytesIO(data))
    reader.read(1000)
    assert reader.hexdigest() == hashlib.sha256(data).hexdigest()
    assert reader.count == len(data)
