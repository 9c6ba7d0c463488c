"""CaptureInfo: interfaces named by decoders (NFLOG rules) stay bounded."""

from __future__ import annotations

from portmatrix.sources.base import MAX_INTERFACES, CaptureInfo, Interface, InterfaceStats


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
