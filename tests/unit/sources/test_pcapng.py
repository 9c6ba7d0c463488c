"""pcapng: byte orders, sections, interfaces with their own link type and time
resolution, the three packet blocks, statistics, unknown blocks, damage, chunking."""

from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import UDP

from portmatrix.decode import decode
from portmatrix.decode.batch import DecodeCounts
from portmatrix.errors import CaptureError
from portmatrix.report.summary import decode_summary
from portmatrix.sources.capture import Capture
from portmatrix.testing.captures import T0, Pcapng, cut, ether, ip, patch, read_frames

SEC = T0 // 1_000_000_000


def udp(i: int = 0, size: int = 10) -> bytes:
    return bytes(ip("10.0.0.1", "10.0.0.2") / UDP(sport=1000 + i, dport=53) / (b"q" * size))


def eth_udp(i: int = 0, size: int = 10) -> bytes:
    return bytes(ether(ip("10.0.0.1", "10.0.0.2") / UDP(sport=1000 + i, dport=53) / (b"q" * size)))


def null_udp(i: int = 0) -> bytes:
    return struct.pack("<I", 2) + udp(i)


@pytest.mark.parametrize("little", [True, False], ids=["le", "be"])
def test_interfaces_with_their_own_link_type_and_resolution(tmp_path, little):
    w = Pcapng().section(little=little)
    eth = w.interface(1, name="eth0")  # no if_tsresol: microseconds
    raw = w.interface(101, tsresol=9, name="tun0")  # decimal: nanoseconds
    null = w.interface(0, tsresol=0x80 | 20)  # binary: 2^-20 s per tick
    pico = w.interface(228, tsresol=12)  # decimal, finer than ns
    w.packet(eth_udp(0), iface=eth, ts=T0 + 123_456_789)
    w.packet(udp(1), iface=raw, ts=T0 + 123_456_789)
    w.packet(null_udp(2), iface=null, raw_ticks=(SEC << 20) | 1)
    w.packet(null_udp(3), iface=null, raw_ticks=(SEC << 20) | (1 << 19))
    # 64 bits of picoseconds only reach 1970-07: an old timestamp.
    w.packet(udp(4), iface=pico, raw_ticks=1000 * 10**12 + 123_456_789_999)
    got, info = read_frames(w.write(tmp_path / "ifaces.pcapng"))

    assert info.format == "pcapng" and not info.truncated
    assert [(i.linktype, i.name, i.tsresol) for i in info.interfaces] == [
        (1, "eth0", 6),
        (101, "tun0", 9),
        (0, "", 0x94),
        (228, "", 12),
    ]
    assert [g.iface for g in got] == [0, 1, 2, 2, 3]
    assert [g.linktype for g in got] == [1, 101, 0, 0, 228]
    assert [g.ts for g in got] == [
        T0 + 123_456_000,  # µs: the ns below are not in the file
        T0 + 123_456_789,
        T0 + 953,  # one 2^-20 s tick is 953.67... ns, rounded down
        T0 + 500_000_000,
        1000 * 1_000_000_000 + 123_456_789,  # the ps below a ns are dropped
    ]
    assert [g.data for g in got] == [eth_udp(0), udp(1), null_udp(2), null_udp(3), udp(4)]
    assert [g.frame for g in got] == [1, 2, 3, 4, 5]
    block_offsets = w.offsets()[-5:]
    assert [g.file_offset for g in got] == block_offsets


def test_interface_time_offset_is_added(tmp_path):
    w = Pcapng()
    w.interface(101, tsresol=9, tsoffset=100)
    w.packet(udp(), ts=T0 + 5)
    got, _ = read_frames(w.write(tmp_path / "off.pcapng"))
    assert got[0].ts == T0 + 100 * 1_000_000_000 + 5


def test_several_sections_in_both_byte_orders(tmp_path):
    w = Pcapng().section(little=True)
    w.interface(1)
    w.interface(101, tsresol=9)
    w.packet(eth_udp(0), iface=0, ts=T0)
    w.packet(udp(1), iface=1, ts=T0 + 1)
    w.section(little=False)  # interface numbers start again at 0 in each section
    w.interface(276, tsresol=9)
    w.packet(bytes.fromhex("0800 0000 00000002 0001 00 00 000000000000 0000") + udp(2), ts=T0 + 2)
    w.section(little=True)
    w.interface(229, tsresol=9)
    w.interface(12, tsresol=9)
    w.packet(udp(3), iface=1, ts=T0 + 3)
    got, info = read_frames(w.write(tmp_path / "sections.pcapng"))

    assert [i.linktype for i in info.interfaces] == [1, 101, 276, 229, 12]
    assert [(g.frame, g.iface, g.linktype, g.ts - T0) for g in got] == [
        (1, 0, 1, 0),
        (2, 1, 101, 1),
        (3, 2, 276, 2),
        (4, 4, 12, 3),
    ]
    assert not info.truncated


def test_simple_packet_blocks_carry_the_time_of_the_packet_before(tmp_path, request):
    w = Pcapng()
    w.interface(101)
    w.simple(udp(0))  # before any timed packet: the first timed one's time
    w.packet(udp(1), ts=T0 + 5_000)
    w.simple(udp(2))
    w.simple(udp(3))
    w.packet(udp(4), ts=T0 + 9_000)
    for i in range(5, 40):
        w.simple(udp(i))
    path = w.write(tmp_path / "spb.pcapng")
    expected = [T0 + 5_000] * 4 + [T0 + 9_000] * 36
    assert [g.ts for g in read_frames(path)[0]] == expected
    request.getfixturevalue("small_chunks")  # across batches too
    assert [g.ts for g in read_frames(path)[0]] == expected
    counts = DecodeCounts()
    for raw in Capture(str(path)).batches():
        counts.add(decode(raw)[1])
    assert counts.ts_carried == 38 and counts.frames == 40
    assert "without a timestamp: 38" in "\n".join(decode_summary(counts))


def test_simple_packet_blocks(tmp_path):
    w = Pcapng()
    w.interface(101, snaplen=64)
    w.interface(1)
    w.simple(udp(0))
    w.simple(udp(1, size=100)[:64], wirelen=len(udp(1, size=100)))  # cut by the snaplen
    path = w.write(tmp_path / "spb.pcapng")
    got, info = read_frames(path)
    assert [(g.iface, g.linktype) for g in got] == [(0, 101), (0, 101)]
    # No packet in the file has a time: the file's modification time, never 1970.
    assert [g.ts for g in got] == [path.stat().st_mtime_ns] * 2
    assert got[0].data == udp(0) and got[0].caplen == got[0].wirelen
    assert (got[1].caplen, got[1].wirelen) == (64, len(udp(1, size=100)))
    assert got[1].data == udp(1, size=100)[:64]
    assert not info.truncated


def test_obsolete_packet_block(tmp_path):
    w = Pcapng()
    w.interface(1)
    w.interface(101, tsresol=9)
    w.obsolete(udp(7), iface=1, ts=T0 + 42, drops=3)
    got, _ = read_frames(w.write(tmp_path / "opb.pcapng"))
    assert [(g.iface, g.linktype, g.ts, g.data) for g in got] == [(1, 101, T0 + 42, udp(7))]


def test_statistics_blocks_keep_the_drops(tmp_path):
    w = Pcapng()
    w.interface(1)
    w.interface(1)
    w.packet(eth_udp())
    w.stats(0, received=100, dropped=1, os_dropped=2)  # superseded below
    w.stats(0, received=200, dropped=3, os_dropped=4, filter_accepted=150, delivered=140)
    w.stats(1, received=10, dropped=5)
    w.stats(9, dropped=1000)  # an interface the section never described
    _, info = read_frames(w.write(tmp_path / "isb.pcapng"))

    s0, s1 = info.stats[0], info.stats[1]
    assert (s0.received, s0.dropped, s0.os_dropped, s0.filter_accepted, s0.delivered) == (
        200,
        3,
        4,
        150,
        140,
    )
    assert (s1.received, s1.dropped, s1.os_dropped) == (10, 5, None)
    assert info.drops == 3 + 4 + 5
    assert len(info.notices) == 1 and "unknown interface 9" in info.notices[0]


def test_unknown_blocks_are_skipped(tmp_path):
    w = Pcapng()
    w.interface(101)
    w.block(0x0BAD, b"custom stuff")
    w.packet(udp(0))
    w.block(4, struct.pack("<HH", 0, 0))  # name resolution block
    w.block(0x40000BAD, b"\x00" * 9)  # custom block (copiable)
    w.block(0x0000_0BAD, b"")
    w.packet(udp(1))
    got, info = read_frames(w.write(tmp_path / "unknown.pcapng"))
    assert [g.data for g in got] == [udp(0), udp(1)]
    assert [g.frame for g in got] == [1, 2]
    assert not info.truncated and not info.notices


def test_packet_on_an_undescribed_interface_is_counted(tmp_path):
    w = Pcapng()
    w.interface(1)
    w.packet(eth_udp(0), iface=0)
    w.packet(eth_udp(1), iface=3)
    path = w.write(tmp_path / "noiface.pcapng")
    got, _ = read_frames(path)
    assert [(g.iface, g.linktype) for g in got] == [(0, 1), (-1, -1)]
    (raw,) = list(Capture(str(path)).batches())
    _, counts = decode(raw)
    counts.check()
    assert counts.ip == 1
    assert counts.undecodable == {"packet names an interface the file never described": 1}


def test_captured_length_never_runs_past_its_block(tmp_path):
    w = Pcapng()
    w.interface(101)
    w.packet(udp(0))
    path = w.write(tmp_path / "liar.pcapng")
    epb = w.offsets()[-1]
    patch(path, epb + 20, struct.pack("<I", 5000))  # claims 5000 captured bytes
    got, info = read_frames(path)
    assert got[0].caplen == len(udp(0)) + (-len(udp(0)) % 4)  # the block's data area
    assert got[0].data.startswith(udp(0))
    assert not info.truncated


def test_cut_short_mid_block(tmp_path):
    w = Pcapng()
    w.interface(101)
    for i in range(3):
        w.packet(udp(i))
    path = w.write(tmp_path / "short.pcapng")
    third = w.offsets()[-1]
    cut(path, third + 30)
    got, info = read_frames(path)
    assert [g.frame for g in got] == [1, 2]
    assert info.truncated.startswith(f"file cut short in the middle of a block at byte {third}")
    assert "after record 2" in info.truncated


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda off: (off + 4, struct.pack("<I", 1001)), "corrupt block length"),
        (lambda off: (off + 4, struct.pack("<I", 8)), "corrupt block length"),
        (lambda off: (off + 4, struct.pack("<I", 44)), "trailing length does not match"),
    ],
    ids=["not-multiple-of-4", "too-small", "trailer-mismatch"],
)
def test_damaged_block_stops_reading_there(tmp_path, damage, message):
    w = Pcapng()
    w.interface(101)
    for i in range(3):
        w.packet(udp(i))
    path = w.write(tmp_path / "bad.pcapng")
    second = w.offsets()[-2]
    patch(path, *damage(second))
    got, info = read_frames(path)
    assert [g.frame for g in got] == [1]
    assert message in info.truncated
    assert f"at byte {second} (after record 1)" in info.truncated


def test_damaged_byte_order_magic(tmp_path):
    w = Pcapng()
    w.interface(101)
    w.packet(udp(0))
    w.section()
    w.interface(101)
    w.packet(udp(1))
    path = w.write(tmp_path / "bom.pcapng")
    second_section = w.offsets()[3]
    patch(path, second_section + 8, b"\xde\xad\xbe\xef")
    got, info = read_frames(path)
    assert len(got) == 1
    assert f"damaged section header (byte-order magic) at byte {second_section}" in info.truncated

    patch(path, 8, b"\xde\xad\xbe\xef")  # the first section: not a capture at all
    with pytest.raises(CaptureError, match="byte-order magic") as err:
        Capture(str(path))
    assert err.value.where == "byte 8"


def test_small_chunks_give_the_same_frames(tmp_path, request):
    w = Pcapng().section(little=True)
    w.interface(1, tsresol=9)
    w.interface(101)
    for i in range(60):
        w.packet(eth_udp(i, size=i * 3) if i % 2 == 0 else udp(i, size=i * 2), iface=i % 2)
        if i == 40:
            w.stats(0, dropped=7)
            w.block(0x0BAD, b"x" * 250)  # an unknown block larger than a chunk
        if i == 50:
            w.section(little=False)
            w.interface(101, tsresol=0x80 | 30)
            w.interface(1, tsresol=9)
    w.simple(udp(99))
    path = w.write(tmp_path / "big.pcapng")
    # The format sniffer reads the first 4 KiB; what matters comes after them.
    assert w.offsets()[-12] > 4096
    whole, info_whole = read_frames(path)

    request.getfixturevalue("small_chunks")
    pieces, info_pieces = read_frames(path)

    assert pieces == whole
    assert len(pieces) == 61 and not info_pieces.truncated
    assert info_pieces.drops == info_whole.drops == 7
    # The second section describes its Ethernet interface as the first did: the same one.
    assert [i.linktype for i in info_pieces.interfaces] == [1, 101, 101]


@pytest.mark.parametrize("tsresol", [30, 0x80 | 70])  # 10^-30 s, 2^-70 s: out of range
def test_time_resolution_out_of_range_is_a_time_unknown(tmp_path, tsresol):
    w = Pcapng()
    w.interface(1)
    w.packet(eth_udp(0), iface=0, ts=T0)
    bad = w.interface(1, tsresol=tsresol)
    w.packet(eth_udp(1), iface=bad, raw_ticks=12345)
    w.packet(eth_udp(2), iface=0, ts=T0 + 7_000)
    path = w.write(tmp_path / "res.pcapng")
    got, info = read_frames(path)
    assert not info.truncated  # the packets after it are read
    assert [g.ts for g in got] == [T0, T0, T0 + 7_000]  # the time of the packet before
    (raw,) = list(Capture(str(path)).batches())
    _, counts = decode(raw)
    assert (counts.ip, counts.ts_out_of_range, counts.ts_carried) == (3, 1, 0)


INT64_MAX = (1 << 63) - 1


@pytest.mark.parametrize(
    ("interface", "ticks"),
    [
        ({"tsoffset": INT64_MAX}, T0 // 1000),  # offset * 10^9 overflows int64
        ({"tsoffset": -(1 << 63)}, T0 // 1000),
        ({"tsoffset": -2_000_000_000}, T0 // 1000),  # before 1970
        ({"tsoffset": 9_000_000_000}, T0 // 1000),  # past 2262
        ({}, T0),  # ns ticks on an interface left at µs: x1000 wraps int64
        ({"tsresol": 0x80}, (1 << 64) - 1),  # 2^64 whole seconds
        ({"tsresol": 0}, (1 << 63) + 5),  # whole seconds
    ],
    ids=["offset-max", "offset-min", "before-1970", "after-2262", "wrap", "binary", "seconds"],
)
def test_a_time_out_of_range_is_counted_and_carried_never_wrapped(tmp_path, interface, ticks):
    w = Pcapng()
    good = w.interface(1, tsresol=9)
    bad = w.interface(1, **interface)
    w.packet(eth_udp(0), iface=good, ts=T0)
    w.packet(eth_udp(1), iface=bad, raw_ticks=ticks)
    w.packet(eth_udp(2), iface=good, ts=T0 + 5)
    path = w.write(tmp_path / "time.pcapng")
    got, info = read_frames(path)
    assert [g.ts for g in got] == [T0, T0, T0 + 5]
    assert not info.truncated
    (raw,) = list(Capture(str(path)).batches())
    _, counts = decode(raw)
    counts.check()
    assert counts.ts_out_of_range == 1 and counts.ip == 3
    assert "time out of range: 1" in "\n".join(decode_summary(counts))


def test_an_offset_within_range_still_moves_the_time(tmp_path):
    w = Pcapng()
    w.interface(101, tsresol=9, tsoffset=-1_000)
    w.packet(udp(), ts=T0)
    got, _ = read_frames(w.write(tmp_path / "back.pcapng"))
    assert got[0].ts == T0 - 1_000 * 1_000_000_000


def test_interface_and_statistics_storms_cost_one_batch_per_chunk(tmp_path):
    # An interface description (or a statistics block, or a section) before every
    # packet: the packets between them still make one batch, not one each.
    w = Pcapng()
    for i in range(300):
        iface = w.interface(1, name=f"if{i}", tsresol=9)
        w.stats(iface, dropped=1)
        w.packet(eth_udp(i), iface=iface, ts=T0 + i)
        if i % 50 == 49:
            w.section()
    path = w.write(tmp_path / "storm.pcapng")
    capture = Capture(str(path))
    batches = list(capture.batches())
    assert len(batches) == 1 and len(batches[0]) == 300
    assert capture.info.drops == 300  # every section's statistics, added
    assert len(capture.info.interfaces) == 300  # each described once, by its own name
    assert batches[0].ts.tolist() == [T0 + i for i in range(300)]


def test_identical_interfaces_of_concatenated_captures_are_one(tmp_path):
    w = Pcapng()
    for k in range(5):  # `cat a.pcapng b.pcapng ...`: a section each, alike
        w.section()
        w.interface(1, name="eth0")
        w.interface(1, name="eth0")  # two alike in one section are two interfaces
        w.packet(eth_udp(k), iface=1, ts=T0 + k)
        w.stats(0, dropped=2)
    got, info = read_frames(w.write(tmp_path / "cat.pcapng"))
    assert [i.name for i in info.interfaces] == ["eth0", "eth0"]
    assert [g.iface for g in got] == [1] * 5
    assert info.stats[0].dropped == 10 and info.drops == 10


def test_too_many_interfaces_in_a_section_stop_the_read(tmp_path):
    from portmatrix.sources.base import MAX_INTERFACES

    w = Pcapng()
    for i in range(MAX_INTERFACES + 1):
        w.interface(1)
        w.packet(eth_udp(0), iface=i, ts=T0)
    got, info = read_frames(w.write(tmp_path / "many.pcapng"))
    assert len(got) == MAX_INTERFACES
    assert info.truncated.startswith(f"more than {MAX_INTERFACES} interfaces in one section")


def test_a_short_interface_description_is_damage(tmp_path):
    w = Pcapng()
    w.interface(1)
    w.packet(eth_udp(0))
    w.block(1, b"")  # 12 bytes: no link type
    w.packet(eth_udp(1))
    got, info = read_frames(w.write(tmp_path / "short-idb.pcapng"))
    assert len(got) == 1
    assert "interface description block too short (12 bytes)" in info.truncated


def test_stray_statistics_are_one_notice(tmp_path):
    w = Pcapng()
    w.interface(1)
    for _ in range(1000):
        w.stats(7, dropped=1)
    _, info = read_frames(w.write(tmp_path / "stray.pcapng"))
    assert info.drops == 0
    assert len(info.notices) == 1
    assert "unknown interface 7" in info.notices[0] and "999 more" in info.notices[0]
