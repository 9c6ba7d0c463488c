"""Cutting a capture file into spans: each span starts exactly at a record (found
by resynchronising on a chain of record headers, never on packet bytes that
look like one), the spans tile the file's records, and a span reads exactly
its own records, decoded as a reader of the whole file decodes them."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from scapy.layers.inet import UDP

from portmatrix.sources import split
from portmatrix.sources.capture import Capture
from portmatrix.testing.captures import Pcapng, ether, frames, gzipped, ip, write_pcap
from support.paths import REPO

SHARED = sorted(
    p for p in (REPO.parent / "shared" / "pcaps").glob("*.pcap*") if "invalid-version" not in p.name
)


def record_starts(path) -> list[int]:
    """Where each record of the whole file starts, as its reader finds them."""
    return [int(o) for raw in Capture(str(path)).batches() for o in raw.file_offset]


@pytest.mark.parametrize("path", SHARED, ids=lambda p: p.name)
@pytest.mark.parametrize("parts", [2, 3, 7])
def test_spans_start_at_records_and_tile_the_file(path, parts):
    spans = split.cut(str(path), parts)
    if spans is None:
        return  # too few records to cut, or not a plain pcap/pcapng (the tests below)
    starts = record_starts(path)
    assert [s.start for s in spans[1:]] == [s.end for s in spans[:-1]]
    assert spans[-1].end == path.stat().st_size and spans[-1].last
    assert spans[0].start == starts[0]
    for span in spans[1:]:
        assert span.start in starts
    read = [o for s in spans for raw in split.SpanCapture(s).batches() for o in raw.file_offset]
    assert read == starts


def payload_like_headers(n: int) -> list:
    """UDP packets whose payload is a plausible pcap record header, twice over."""
    fake = struct.pack("<IIII", 1_700_000_000, 5, 20, 20) * 2
    return [ether(ip("10.0.0.1", "10.0.0.2") / UDP(sport=1, dport=2) / fake) for _ in range(n)]


def test_packet_bytes_that_look_like_a_header_are_not_a_start(tmp_path):
    path = write_pcap(tmp_path / "tricky.pcap", frames(payload_like_headers(400)))
    starts = record_starts(path)
    for parts in range(2, 9):
        spans = split.cut(str(path), parts)
        assert spans is not None
        assert all(s.start in starts for s in spans)


def test_pcapng_spans_read_the_interfaces_described_before_them(tmp_path):
    path = tmp_path / "two.pcapng"
    ng = Pcapng()
    ng.section()
    ng.interface(linktype=1)
    ng.interface(linktype=101)  # raw IP
    for k, f in enumerate(frames(payload_like_headers(300))):
        if k % 2:
            ng.packet(f.data, iface=0, ts=f.ts)
        else:
            ng.packet(bytes(ip("10.0.0.3", "10.0.0.4") / UDP()), iface=1, ts=f.ts)
    ng.write(path)
    spans = split.cut(str(path), 4)
    assert spans is not None
    whole = [raw for raw in Capture(str(path)).batches()]
    linktypes = np.concatenate([raw.linktype for raw in whole])
    ifaces = np.concatenate([raw.iface for raw in whole])
    got = [raw for s in spans for raw in split.SpanCapture(s).batches()]
    assert np.array_equal(np.concatenate([raw.linktype for raw in got]), linktypes)
    assert np.array_equal(np.concatenate([raw.iface for raw in got]), ifaces)


def test_what_cannot_be_cut(tmp_path):
    path = write_pcap(tmp_path / "a.pcap", frames(payload_like_headers(200)))
    assert split.cut(str(path), 1) is None
    assert split.cut(str(gzipped(path)), 2) is None  # compressed: no offsets to go to
    assert split.cut(str(tmp_path / "gone.pcap"), 2) is None
    two = tmp_path / "sections.pcapng"
    ng = Pcapng()
    for _ in range(2):
        ng.section()
        ng.interface(linktype=1)
        ng.packets(payload_like_headers(50))
    ng.write(two)
    # A second section: the span that meets it says so (its file is read whole).
    first, _ = split.cut(str(two), 2)
    capture = split.SpanCapture(first)
    list(capture.batches())
    assert capture.context_changed


def test_a_span_ends_where_its_last_record_ends(tmp_path):
    path = write_pcap(tmp_path / "a.pcap", frames(payload_like_headers(100)))
    starts = record_starts(path)
    span = split.Span(str(path), starts[10], starts[20] + 3, last=False)  # 3 bytes over
    capture = split.SpanCapture(span)
    assert sum(len(raw) for raw in capture.batches()) == 10
    assert capture.end == starts[20]  # not where the span was told to end
    assert [f.linktype for f in capture.info.interfaces] == [1]
