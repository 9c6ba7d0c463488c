"""Reading a stream as chunks: records straddling chunks, the carried tail, the
read-ahead thread, and live streams returning what has arrived."""

from __future__ import annotations

import hashlib
import io
import os
import threading

import pytest

from portmatrix.sources.chunks import Chunks
from portmatrix.testing.captures import gzipped, patch, pcap_record_offsets, read_frames, write_pcap
from support.packets import udp_frames


def test_gzip_with_a_corrupt_record_stops_there_and_hashes_the_whole_file(tmp_path, monkeypatch):
    """Compressed input is read ahead by a thread; stopping early must stop it
    before the rest of the file is read for the digest."""
    monkeypatch.setattr("portmatrix.sources.chunks.CHUNK", 512)
    path = write_pcap(tmp_path / "bad.pcap", udp_frames(200))
    tenth = pcap_record_offsets(path.read_bytes())[9]
    patch(path, tenth + 8, (0x7FFF_FFFF).to_bytes(4, "little"))
    gz = gzipped(path)
    got, info = read_frames(gz)
    assert [g.frame for g in got] == list(range(1, 10))
    assert info.truncated.startswith("corrupt record length")
    assert info.sha256 == hashlib.sha256(gz.read_bytes()).hexdigest()


def records_through(chunks: Chunks, size: int) -> list[bytes]:
    """Read `chunks` as a reader of fixed-size records does: take the complete
    records of each chunk, carry the incomplete one into the next."""
    out = []
    while not chunks.eof:
        data = chunks.next()
        whole = len(data) // size * size
        out += [bytes(data[i : i + size]) for i in range(0, whole, size)]
        chunks.keep(data, whole)
    return out


RECORDS = [bytes([i]) * 3 for i in range(40)]  # 120 bytes of 3-byte records


@pytest.mark.parametrize("ahead", [False, True], ids=["inline", "read-ahead"])
@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_records_straddling_chunks_are_put_together(chunk, ahead):
    data = b"".join(RECORDS)
    chunks = Chunks(io.BytesIO(data[5:]), data[:5], chunk=chunk, ahead=ahead)  # head sniffed
    assert records_through(chunks, 3) == RECORDS
    assert len(chunks.tail) == 0
    chunks.close()


def test_an_incomplete_record_at_the_end_is_left_in_the_tail():
    chunks = Chunks(io.BytesIO(b"".join(RECORDS) + b"xy"), b"", chunk=16)
    assert records_through(chunks, 3) == RECORDS
    assert bytes(chunks.tail) == b"xy"


def test_a_tail_longer_than_the_headroom_is_still_joined():
    chunks = Chunks(io.BytesIO(b"".join(RECORDS)), b"", chunk=4)
    chunks.HEADROOM = 2  # records (3 bytes) and carried tails outgrow the room in front
    assert records_through(chunks, 30) == [b"".join(RECORDS[k : k + 10]) for k in (0, 10, 20, 30)]


def test_close_stops_the_read_ahead_thread():
    chunks = Chunks(io.BytesIO(bytes(1 << 16)), b"", chunk=64, ahead=True)
    assert len(chunks.next()) == 64
    chunks.close()
    assert not chunks._thread.is_alive()


def test_an_error_reading_ahead_is_raised_to_the_reader():
    class Failing(io.RawIOBase):
        def readinto(self, buf):
            raise OSError("disk gone")

    chunks = Chunks(Failing(), b"", chunk=64, ahead=True)
    with pytest.raises(OSError, match="disk gone"):
        chunks.next()
    assert chunks.eof


class Pipe:
    """The read end of a pipe, unbuffered, as a live capture's stream."""

    def __init__(self, fd: int) -> None:
        self.file = open(fd, "rb", buffering=0)  # noqa: SIM115 - closed by the test

    def readinto1(self, buf) -> int:
        return self.file.readinto(buf)

    def fileno(self) -> int:
        return self.file.fileno()


def test_a_live_stream_returns_what_has_arrived_without_waiting_for_a_chunk():
    read_end, write_end = os.pipe()
    pipe = Pipe(read_end)
    try:
        chunks = Chunks(pipe, b"", chunk=1 << 16)
        chunks.live = True
        os.write(write_end, b"first")
        assert bytes(chunks.next()) == b"first"
        assert not chunks.eof  # a short read is no end on a live stream
        os.write(write_end, b"second")
        os.close(write_end)
        assert bytes(chunks.next()) == b"second"
        assert bytes(chunks.next()) == b""
        assert chunks.eof
    finally:
        pipe.file.close()


def test_a_live_head_holding_whole_packets_does_not_wait_for_the_next_one():
    """The read that saw the capture start may bring packets with the header: they
    come at once, not with the next packet (on a quiet link, much later)."""
    read_end, write_end = os.pipe()
    pipe = Pipe(read_end)
    later = threading.Timer(0.3, os.write, (write_end, b"-more"))
    try:
        chunks = Chunks(pipe, b"packets with the header", chunk=1 << 16)
        chunks.live = True
        later.start()
        assert bytes(chunks.next()) == b"packets with the header"  # not "...-more"
        assert not chunks.eof
        chunks.keep(chunks.tail, len(chunks.tail) - 3)  # the reader kept an incomplete end
        assert bytes(chunks.next()) == b"der-more"  # then read as before
    finally:
        later.join()
        os.close(write_end)
        pipe.file.close()
