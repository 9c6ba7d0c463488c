"""Opening captures: format sniffing, gzip, standard input, paths, directories and globs."""

from __future__ import annotations

import gzip
import hashlib
import io
import sys

import pytest
from scapy.layers.inet import UDP

from portmatrix.errors import CaptureError
from portmatrix.sources.capture import Capture
from portmatrix.sources.inputs import expand_inputs, skipped_notice
from portmatrix.testing.captures import (
    Pcapng,
    cut,
    ether,
    gzipped,
    ip,
    patch,
    pcap_bytes,
    pcap_record_offsets,
    read_frames,
    write_pcap,
)


def packets(count: int, size: int = 40) -> list:
    return [
        ether(
            ip("10.0.0.1", "10.0.0.2") / UDP(sport=2000 + i, dport=53) / (bytes([i % 256]) * size)
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("kind", ["pcap", "pcap-ns", "pcapng"])
def test_gzip_is_read_transparently(tmp_path, kind):
    if kind == "pcapng":
        w = Pcapng()
        w.interface(1, tsresol=9)
        path = w.packets(packets(5)).write(tmp_path / "a.pcapng")
    else:
        path = write_pcap(tmp_path / "a.pcap", packets(5), nanos=kind == "pcap-ns")
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
    path = write_pcap(tmp_path / "a.pcap", packets(count, size=100))
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
    content = pcap_bytes(packets(3))
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


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_standard_input(monkeypatch, compress):
    content = pcap_bytes(packets(4), nanos=True)
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


def test_expand_inputs(tmp_path, monkeypatch):
    d = tmp_path / "caps"
    d.mkdir()
    write_pcap(d / "b.pcap", packets(1))
    (d / "a.pcapng").write_bytes(Pcapng().section().bytes())
    (d / ".hidden").write_bytes(b"")
    (d / "sub").mkdir()
    monkeypatch.chdir(tmp_path)

    assert expand_inputs([str(d)]) == [str(d / "a.pcapng"), str(d / "b.pcap")]
    assert expand_inputs(["caps/*.pcap"]) == ["caps/b.pcap"]
    assert expand_inputs([str(d / "*.pcap*")]) == [str(d / "a.pcapng"), str(d / "b.pcap")]
    assert expand_inputs(["-", "caps/b.pcap"]) == ["-", "caps/b.pcap"]
    with pytest.raises(CaptureError, match="no file matches"):
        expand_inputs(["caps/*.cap"])
    with pytest.raises(CaptureError, match="no such file"):
        expand_inputs(["caps/missing.pcap"])
    with pytest.raises(CaptureError, match="holds no files"):
        expand_inputs([str(d / "sub")])


def test_folders_and_globs_take_captures_and_skip_the_rest(tmp_path):
    """A forensics folder holds notes, a README and evidence sidecars beside the
    captures: those are skipped (and listed), never an error; a file named
    explicitly is read whatever it is."""
    d = tmp_path / "case-42"
    d.mkdir()
    write_pcap(d / "a.pcap", packets(1))
    gzipped(write_pcap(d / "b.pcap", packets(1)), d / "b.pcap.gz")
    (d / "b.pcap").unlink()
    (d / "README").write_text("notes\n")
    (d / "evidence.pcapng.json").write_text("{}")
    gzipped(d / "README", d / "old-notes.gz")
    found = expand_inputs([str(d)])
    assert found == [str(d / "a.pcap"), str(d / "b.pcap.gz")]
    assert found.skipped == [
        str(d / "README"),
        str(d / "evidence.pcapng.json"),
        str(d / "old-notes.gz"),
    ]
    assert "3 file(s)" in skipped_notice(found) and "README" in skipped_notice(found)
    assert expand_inputs([str(d / "*")]).skipped == found.skipped
    assert expand_inputs([str(d / "README")]) == [str(d / "README")]  # named: read, and fail
    assert skipped_notice(expand_inputs([str(d / "a.pcap")])) == ""
    only_notes = tmp_path / "notes"
    only_notes.mkdir()
    (only_notes / "x.txt").write_text("x")
    with pytest.raises(CaptureError, match="no capture among its 1 file"):
        expand_inputs([str(only_notes)])


def test_corrupt_deflate_data_mid_file(tmp_path):
    path = write_pcap(tmp_path / "a.pcap", packets(300, size=100))
    gz = gzipped(path)
    size = gz.stat().st_size
    patch(gz, size // 2, b"\xff" * 64)
    got, info = read_frames(gz)
    whole, _ = read_frames(path)
    assert got == whole[: len(got)]
    assert len(got) < 300
    assert info.truncated.startswith("damaged compressed data")


def test_gzip_with_a_corrupt_record_stops_there_and_hashes_the_whole_file(tmp_path, monkeypatch):
    """Compressed input is read ahead by a thread; stopping early must stop it
    before the rest of the file is read for the digest."""
    monkeypatch.setattr("portmatrix.sources.chunks.CHUNK", 512)
    path = write_pcap(tmp_path / "bad.pcap", packets(200))
    tenth = pcap_record_offsets(path.read_bytes())[9]
    patch(path, tenth + 8, (0x7FFF_FFFF).to_bytes(4, "little"))
    gz = gzipped(path)
    got, info = read_frames(gz)
    assert [g.frame for g in got] == list(range(1, 10))
    assert info.truncated.startswith("corrupt record length")
    assert info.sha256 == hashlib.sha256(gz.read_bytes()).hexdigest()


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
        path = w.packets(packets(50)).write(tmp_path / "a.pcapng")
    else:
        path = write_pcap(tmp_path / "a.pcap", packets(50))
    if kind == "gzip":
        path = gzipped(path)
    capture = Capture(str(path))
    assert sum(len(batch) for batch in capture.batches()) == 50
    assert capture.info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (capture._hashing._thread is None) == (len(cpus) == 1)  # inline on one CPU
