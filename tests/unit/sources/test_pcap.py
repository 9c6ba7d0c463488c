"""Classic pcap: byte orders, µs and ns, snaplen-cut frames, damage and chunking."""

from __future__ import annotations

import hashlib
import struct

import pytest
from scapy.layers.inet import UDP

from portmatrix.errors import CaptureError
from portmatrix.sources.capture import Capture
from portmatrix.testing.captures import (
    T0,
    Frame,
    cut,
    ether,
    ip,
    patch,
    pcap_record_offsets,
    read_frames,
    write_pcap,
)


def udp_frames(count: int, *, start: int = T0) -> list[Frame]:
    """`count` Ethernet/IPv4/UDP frames of growing size with irregular ns timestamps."""
    out = []
    for i in range(count):
        pkt = ether(ip("10.0.0.1", "10.0.0.2") / UDP(sport=1000 + i, dport=53) / (b"x" * (i * 7)))
        out.append(Frame(bytes(pkt), ts=start + i * 1_000_123_457 + 987))
    return out


@pytest.mark.parametrize("little", [True, False], ids=["le", "be"])
@pytest.mark.parametrize("nanos", [False, True], ids=["us", "ns"])
def test_byte_orders_and_resolutions(tmp_path, little, nanos):
    sent = udp_frames(3)
    path = write_pcap(tmp_path / "a.pcap", sent, little=little, nanos=nanos)
    got, info = read_frames(path)

    assert info.format == ("pcap-ns" if nanos else "pcap")
    assert info.frames == 3 and not info.truncated
    assert [i.linktype for i in info.interfaces] == [1]
    assert info.interfaces[0].tsresol == (9 if nanos else 6)
    assert [g.frame for g in got] == [1, 2, 3]
    for s, g in zip(sent, got, strict=True):
        assert g.data == s.data
        assert g.caplen == g.wirelen == len(s.data)
        assert g.linktype == 1 and g.iface == 0
        # µs files keep the microseconds: the nanoseconds below are lost, exactly.
        assert g.ts == (s.ts if nanos else s.ts // 1000 * 1000)
    assert [g.file_offset for g in got] == pcap_record_offsets(path.read_bytes())


def test_exact_timestamps_at_the_edges(tmp_path):
    last_second = (1 << 32) - 1  # 2106-02-07, the largest a pcap record holds
    sent = [
        Frame(b"\0" * 20, ts=0),
        Frame(b"\0" * 20, ts=999_999_999),
        Frame(b"\0" * 20, ts=last_second * 1_000_000_000 + 999_999_999),
    ]
    got, _ = read_frames(write_pcap(tmp_path / "t.pcap", sent, nanos=True, linktype=147))
    assert [g.ts for g in got] == [f.ts for f in sent]


def test_snaplen_cut_frames_keep_their_wire_length(tmp_path):
    sent = udp_frames(4)
    path = write_pcap(tmp_path / "cut.pcap", sent, snaplen=40)
    got, info = read_frames(path)
    assert not info.truncated
    assert info.interfaces[0].snaplen == 40
    for s, g in zip(sent, got, strict=True):
        assert (g.caplen, g.wirelen) == (40, len(s.data))
        assert g.data == s.data[:40]


def test_fcs_bits_of_the_link_type_are_ignored(tmp_path):
    # pcap-linktype(7): bits 28-31 may say the frames carry an FCS.
    path = write_pcap(tmp_path / "fcs.pcap", udp_frames(1), linktype=0x1000_0000 | 1)
    got, info = read_frames(path)
    assert info.interfaces[0].linktype == 1
    assert got[0].linktype == 1


@pytest.mark.parametrize("into_record", [5, 16 + 3], ids=["in-header", "in-data"])
def test_cut_short_mid_record_is_analyzed_up_to_the_cut(tmp_path, into_record):
    path = write_pcap(tmp_path / "short.pcap", udp_frames(3))
    third = pcap_record_offsets(path.read_bytes())[2]
    cut(path, third + into_record)

    got, info = read_frames(path)
    assert [g.frame for g in got] == [1, 2]
    assert info.frames == 2
    assert "cut short" in info.truncated
    assert "record 3" in info.truncated
    assert f"byte {third}" in info.truncated
    assert f"({into_record} bytes left)" in info.truncated
    assert info.bytes_read == third


def test_cut_at_a_record_boundary_is_not_damage(tmp_path):
    path = write_pcap(tmp_path / "two.pcap", udp_frames(3))
    cut(path, pcap_record_offsets(path.read_bytes())[2])
    got, info = read_frames(path)
    assert len(got) == 2 and info.truncated == ""


@pytest.mark.parametrize("little", [True, False], ids=["le", "be"])
def test_corrupt_record_length_stops_there(tmp_path, little):
    path = write_pcap(tmp_path / "bad.pcap", udp_frames(3), little=little)
    second = pcap_record_offsets(path.read_bytes())[1]
    patch(path, second + 8, struct.pack("<I" if little else ">I", 0x7FFF_FFFF))

    got, info = read_frames(path)
    assert [g.frame for g in got] == [1]
    assert info.truncated == (
        f"corrupt record length {0x7FFF_FFFF} at byte {second} (record 2); stopped reading there"
    )


@pytest.mark.parametrize(
    ("content", "what", "where"),
    [
        (b"", "empty", "byte 0"),
        (b"hello, world, this is text\n" * 4, "not a pcap or pcapng capture", "byte 0"),
        (b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00", "header is cut short (8 of 24 bytes)", "byte 0"),
    ],
    ids=["empty", "text", "short-header"],
)
def test_not_a_capture(tmp_path, content, what, where):
    path = tmp_path / "x.pcap"
    path.write_bytes(content)
    with pytest.raises(CaptureError) as err:
        Capture(str(path))
    assert what in err.value.what
    assert err.value.file == str(path)
    assert err.value.where == where
    assert err.value.hint


def test_unsupported_version_is_rejected(tmp_path):
    path = write_pcap(tmp_path / "v1.pcap", udp_frames(1), version=(1, 4))
    with pytest.raises(CaptureError, match=r"version 1\.4") as err:
        Capture(str(path))
    assert err.value.where == "byte 4"


def test_digest_size_and_bytes_read(tmp_path):
    path = write_pcap(tmp_path / "a.pcap", udp_frames(5))
    _, info = read_frames(path)
    content = path.read_bytes()
    assert info.size == len(content) == info.bytes_read
    assert info.sha256 == hashlib.sha256(content).hexdigest()


def test_digest_covers_the_whole_file_even_when_reading_stops(tmp_path):
    path = write_pcap(tmp_path / "bad.pcap", udp_frames(3))
    patch(path, pcap_record_offsets(path.read_bytes())[1] + 8, b"\xff\xff\xff\x7f")
    _, info = read_frames(path)
    assert info.truncated
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("little", [True, False], ids=["le", "be"])
def test_small_chunks_give_the_same_frames(tmp_path, request, little):
    # Larger than the 4 KiB the format sniffer reads first, so the chunk loop runs.
    sent = udp_frames(60)
    path = write_pcap(tmp_path / "big.pcap", sent, little=little, nanos=True, snaplen=150)
    whole, info_whole = read_frames(path)
    assert path.stat().st_size > 2 * 4096

    request.getfixturevalue("small_chunks")
    pieces, info_pieces = read_frames(path)

    assert pieces == whole
    assert len(pieces) == 60 and info_pieces.frames == 60
    assert [g.ts for g in pieces] == [f.ts for f in sent]
    assert [g.wirelen for g in pieces] == [len(f.data) for f in sent]
    assert info_pieces.sha256 == info_whole.sha256


def test_small_chunks_report_the_same_cut(tmp_path, small_chunks):
    path = write_pcap(tmp_path / "big.pcap", udp_frames(60))
    offsets = pcap_record_offsets(path.read_bytes())
    cut(path, offsets[41] + 30)
    got, info = read_frames(path)
    assert len(got) == 41
    assert f"record 42 at byte {offsets[41]}" in info.truncated


def test_a_record_longer_than_any_packet_is_damage_even_under_a_huge_snaplen(tmp_path):
    # A snaplen of 0xFFFFFFFF and a record claiming 4 GB: waiting for its end would
    # hold the rest of the file in memory; it is a corrupt length, said at once.
    path = write_pcap(tmp_path / "huge.pcap", udp_frames(2), snaplen=0xFFFF_FFFF)
    second = pcap_record_offsets(path.read_bytes())[1]
    patch(path, second + 8, struct.pack("<I", 0xFFFF_FFF0))
    with open(path, "ab") as fh:
        fh.write(bytes(70_000))
    got, info = read_frames(path)
    assert [g.frame for g in got] == [1]
    assert info.truncated.startswith(f"corrupt record length {0xFFFF_FFF0} at byte {second}")


def test_records_up_to_the_ceiling_are_read_when_the_snaplen_allows_them(tmp_path):
    from portmatrix.sources.chunks import MAX_RECORD

    big = Frame(bytes(ether(ip("10.0.0.1", "10.0.0.2") / UDP() / bytes(60_000))) * 5, ts=T0)
    path = write_pcap(tmp_path / "big.pcap", [big], snaplen=MAX_RECORD * 2)
    got, info = read_frames(path)
    assert len(got) == 1 and got[0].caplen == len(big.data) and not info.truncated
