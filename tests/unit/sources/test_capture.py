"""Opening one capture input: format sniffing, gzip (whole, cut, damaged),
standard input, missing files and directories."""

from __future__ import annotations

import gzip
import hashlib
import io
import sys

import pytest

from portmatrix.errors import CaptureError
from portmatrix.sources.capture import Capture
from portmatrix.testing.captures import (
    Pcapng,
    cut,
    gzipped,
    patch,
    pcap_bytes,
    pcap_record_offsets,
    read_frames,
    write_pcap,
)
from support.packets import udp_frames


@pytest.mark.parametrize("kind", ["pcap", "pcap-ns", "pcapng"])
def test_gzip_is_read_transparently(tmp_path, kind):
    if kind == "pcapng":
        w = Pcapng()
        w.interface(1, tsresol=9)
        path = w.packets(udp_frames(5)).write(tmp_path / "a.pcapng")
    else:
        path = write_pcap(tmp_path / "a.pcap", udp_frames(5), nanos=kind == "pcap-ns")
    plain, plain_info = read_frames(path)
    gz = gzipped(path)
    got, info = read_frames(gz)
    assert got == plain and len(got) == 5
    assert info.format == kind + "+gzip"
    assert info.size == gz.stat().st_size
    assert info.sha256 == hashlib.sha256(gz.read_bytes()).hexdigest()  # of the file as given
    assert info.bytes_read == plain_info.bytes_read == path.stat().st_size


@pytest.mark.parametrize("count", [10, 300], ids=["within-first-4k", "large"])
def test_cut_gzip_is_analyzed_up_to_the_cut(tmp_path, count):
    path = write_pcap(tmp_path / "a.pcap", udp_frames(count, size=100))
    gz = gzipped(path)
    whole, _ = read_frames(path)
    cut(gz, gz.stat().st_size * 2 // 3)

    got, info = read_frames(gz)
    assert 0 < len(got) < count
    assert got == whole[: len(got)]  # every frame decompressed before the cut is kept
    # Where the decompressed data stops depends on deflate's blocks: inside a
    # record or (rarely) between two; either way the report names the place.
    assert info.truncated.startswith("compressed stream ends early: ")
    assert f"at byte {pcap_record_offsets(path.read_bytes())[len(got)]}" in info.truncated


def test_gzip_cut_at_a_record_boundary_still_says_it_ended_early(tmp_path):
    content = pcap_bytes(udp_frames(3))
    stream = gzip.compress(content, mtime=0)
    # A gzip stream without its 8-byte trailer: all the data, no end marker.
    path = tmp_path / "notrailer.pcap.gz"
    path.write_bytes(stream[:-8])
    got, info = read_frames(path)
    assert len(got) == 3
    assert info.truncated == (
        f"compressed stream ends early: stopped after record 3 at byte {len(content)}; "
        "analyzed up to there"
    )


def test_damaged_gzip_header_is_an_error(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(b"\x1f\x8b\x08\xff" + b"\0" * 40)  # reserved flag bits set
    with pytest.raises(CaptureError, match="damaged gzip data") as err:
        Capture(str(path))
    assert err.value.file == str(path) and err.value.hint


def test_gzip_of_something_else_is_not_a_capture(tmp_path):
    path = tmp_path / "notes.txt.gz"
    path.write_bytes(gzip.compress(b"just some text\n" * 10))
    with pytest.raises(CaptureError, match="not a pcap or pcapng capture"):
        Capture(str(path))


def test_corrupt_deflate_data_mid_file(tmp_path):
    path = write_pcap(tmp_path / "a.pcap", udp_frames(300, size=100))
    gz = gzipped(path)
    size = gz.stat().st_size
    patch(gz, size // 2, b"\xff" * 64)
    got, info = read_frames(gz)
    whole, _ = read_frames(path)
    assert got == whole[: len(got)]
    assert len(got) < 300
    assert info.truncated.startswith("damaged compressed data")


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_standard_input(monkeypatch, compress):
    content = pcap_bytes(udp_frames(4), nanos=True)
    if compress:
        content = gzip.compress(content)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(content)))
    got, info = read_frames("-")
    assert len(got) == 4
    assert info.path == "-" and info.size is None
    assert info.sha256 == hashlib.sha256(content).hexdigest()


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CaptureError, match="no such file") as err:
        Capture(str(tmp_path / "nope.pcap"))
    assert err.value.hint
    with pytest.raises(CaptureError, match="is a directory"):
        Capture(str(tmp_path))


def test_a_second_read_can_skip_the_digest(tmp_path, monkeypatch):
    """The labels' read of a file already read (and hashed) hashes nothing: the
    same packets, no digest, and SHA-256 never fed."""
    path = write_pcap(tmp_path / "a.pcap", udp_frames(50))
    fed = []
    monkeypatch.setattr(hashlib, "sha256", lambda: _Counting(fed))
    capture = Capture(str(path), digest=False)
    frames = [len(raw) for raw in capture.batches()]
    assert sum(frames) == 50 and capture.info.sha256 == "" and fed == []
    with_digest = Capture(str(path))
    assert sum(len(raw) for raw in with_digest.batches()) == 50
    assert fed and with_digest.info.bytes_read == path.stat().st_size


class _Counting:
    def __init__(self, fed: list) -> None:
        self.fed = fed

    def update(self, data) -> None:
        self.fed.append(len(data))

    def hexdigest(self) -> str:
        return "x"
