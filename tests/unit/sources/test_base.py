"""What a source says about its capture besides the packets: interfaces, their
statistics and the drops they add up to; interfaces named by decoders (NFLOG
rules) stay bounded."""

from __future__ import annotations

from portmatrix.sources.base import MAX_INTERFACES, CaptureInfo, Interface, InterfaceStats
from portmatrix.testing.captures import Pcapng, read_frames


def test_drops_add_the_interfaces_and_the_os_and_skip_what_is_unknown():
    info = CaptureInfo(
        "a.pcapng",
        stats={
            0: InterfaceStats(0, received=100, dropped=4, os_dropped=1),
            1: InterfaceStats(1, dropped=None, os_dropped=7),
            2: InterfaceStats(2, received=9),
        },
    )
    assert info.drops == 12
    assert CaptureInfo("b.pcap").drops == 0


def test_each_capture_gets_its_own_lists():
    a, b = CaptureInfo("a"), CaptureInfo("b")
    a.interfaces.append(Interface(1))
    a.notices.append("x")
    a.dns["h.example"] = [1]
    assert (b.interfaces, b.notices, b.dns, b.stats) == ([], [], {}, {})


def test_a_pcapng_reader_fills_it_in(tmp_path):
    w = Pcapng()
    w.interface(1, name="eth0", tsresol=9)
    w.interface(113, name="any")
    w.stats(1, received=50, dropped=2, os_dropped=3)
    path = w.write(tmp_path / "c.pcapng")
    _, info = read_frames(path)
    assert [(i.linktype, i.name, i.tsresol) for i in info.interfaces] == [
        (1, "eth0", 9),
        (113, "any", 6),  # microseconds unless the interface says otherwise
    ]
    assert info.stats[1].received == 50 and info.drops == 5
    assert (info.format, info.frames, info.truncated) == ("pcapng", 0, "")
    assert info.size == info.bytes_read == path.stat().st_size


def test_labels_are_found_again_and_stop_growing_at_the_limit():
    info = CaptureInfo(path="x")
    info.interfaces.append(Interface(linktype=1, name="eth0"))
    assert info.label(1, "eth0") == 0
    first = info.label(239, "nflog:1 drop")
    assert info.label(239, "nflog:1 drop") == first == 1
    for k in range(MAX_INTERFACES + 50):  # a capture whose every packet names a new rule
        info.label(239, f"nflog:2 r{k}")
    assert len(info.interfaces) == MAX_INTERFACES + 1
    shared = info.label(239, "nflog:3 yet another")
    assert info.interfaces[shared].name == f"(more than {MAX_INTERFACES} interfaces)"
    assert info.label(239, "nflog:1 drop") == first  # known names keep theirs


def test_statistics_of_two_sections_add_up():
    a = InterfaceStats(iface=0, received=10, dropped=1)
    b = InterfaceStats(iface=0, received=5, os_dropped=2)
    total = a.plus(b)
    assert (total.received, total.dropped, total.os_dropped, total.delivered) == (15, 1, 2, None)
