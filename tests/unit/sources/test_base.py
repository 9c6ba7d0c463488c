"""What a source says about its capture besides the packets: interfaces, their
statistics and the drops they add up to."""

from __future__ import annotations

from portmatrix.sources.base import CaptureInfo, Interface, InterfaceStats
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
