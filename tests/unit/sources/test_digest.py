"""The SHA-256 of each input, hashed inline on one CPU or on a worker thread, in
bounded memory however fast the file is read."""

from __future__ import annotations

import hashlib
import io
import time

import pytest

from portmatrix.sources import digest
from portmatrix.sources.capture import Capture
from portmatrix.sources.digest import HashingReader
from portmatrix.testing.captures import Pcapng, gzipped, write_pcap
from support.packets import udp_frames


@pytest.mark.parametrize("cpus", [{0}, {0, 1}], ids=["one-cpu-inline", "threaded"])
@pytest.mark.parametrize("kind", ["pcap", "pcapng", "gzip"])
def test_the_digest_is_the_files_whether_hashed_inline_or_on_a_thread(
    tmp_path, monkeypatch, cpus, kind
):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: cpus)
    monkeypatch.setattr("portmatrix.sources.chunks.CHUNK", 700)  # many reads, a carried tail
    if kind == "pcapng":
        w = Pcapng()
        w.interface(1)
        path = w.packets(udp_frames(50)).write(tmp_path / "a.pcapng")
    else:
        path = write_pcap(tmp_path / "a.pcap", udp_frames(50))
    if kind == "gzip":
        path = gzipped(path)
    capture = Capture(str(path))
    assert sum(len(batch) for batch in capture.batches()) == 50
    assert capture.info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (capture._hashing._thread is None) == (len(cpus) == 1)  # inline on one CPU


@pytest.fixture(params=[{0}, {0, 1}], ids=["one-cpu-inline", "threaded"])
def cpus(request, monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: request.param)
    return request.param


def test_every_kind_of_read_is_hashed_and_counted(cpus):
    data = bytes(range(256)) * 40
    reader = HashingReader(io.BufferedReader(io.BytesIO(data)))
    got = bytearray(reader.read(10))
    # A fresh buffer per read: the hashing thread may still read one handed to it.
    first, second = bytearray(100), bytearray(100)
    got += first[: reader.readinto(first)]
    got += reader.read1(50)
    got += second[: reader.readinto1(second)]
    assert bytes(got) == data[: len(got)]
    assert reader.count == len(got) == 260
    # The digest is of the whole stream: what nobody read yet is hashed too.
    assert reader.hexdigest() == hashlib.sha256(data).hexdigest()
    assert reader.count == len(data)


def test_a_stream_without_read1_is_read_through_read(cpus):
    class Plain:
        def __init__(self, data):
            self.stream = io.BytesIO(data)

        def read(self, n=-1):
            return self.stream.read(n)

        def readinto(self, buf):
            return self.stream.readinto(buf)

    reader = HashingReader(Plain(b"abcdef"))
    assert reader.read1(4) == b"abcd"
    buf = bytearray(8)
    assert reader.readinto1(buf) == 2 and bytes(buf[:2]) == b"ef"
    assert reader.hexdigest() == hashlib.sha256(b"abcdef").hexdigest()


def test_an_empty_stream_has_the_digest_of_nothing(cpus):
    reader = HashingReader(io.BytesIO(b""))
    assert reader.read(100) == b""
    assert reader.hexdigest() == hashlib.sha256(b"").hexdigest()
    assert reader.count == 0


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
    assert reader._inline  # the rest was hashed here, the thread has ended


def test_the_rest_after_a_stop_is_hashed_inline():
    data = b"x" * (3 << 20)
    reader = HashingReader(io.BytesIO(data))
    reader.read(1000)
    assert reader.hexdigest() == hashlib.sha256(data).hexdigest()
    assert reader.count == len(data)


def test_a_whole_file_digest_on_its_thread(tmp_path):
    path = tmp_path / "big.bin"
    data = bytes(range(256)) * 70_000  # more than two of its blocks
    path.write_bytes(data)
    assert digest.FileDigest(str(path)).hexdigest() == hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert digest.FileDigest(str(empty)).hexdigest() == hashlib.sha256(b"").hexdigest()
    with pytest.raises(FileNotFoundError):
        digest.FileDigest(str(tmp_path / "gone")).hexdigest()


def test_a_whole_file_digest_stopped_is_gone_and_empty(tmp_path, monkeypatch):
    """Closed half way (the caller failed or was interrupted): the thread ends at its
    next block, and there is no digest to tie a report to."""
    monkeypatch.setattr(digest.FileDigest, "BLOCK", 1024)
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(50 << 20))
    running = digest.FileDigest(str(path))
    running.close()
    assert not running._thread.is_alive()
    assert running.hexdigest() == ""
