"""One file read in spans (by several workers) gives exactly what reading it whole
gives: every flow column, the decode counts and the capture's info (frames,
where reading stopped, digest, DNS answers, names clients gave, interfaces). On every shared
capture cut where resynchronising finds starts, and on cuts hypothesis draws:
at any records, and at bytes that are not records at all (the join then sees
a boundary that does not meet and reads the file whole)."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import UDP

from portmatrix.flows import from_captures
from portmatrix.flows.from_captures import read_file, read_span, read_traffic
from portmatrix.sources import split, workers
from portmatrix.sources.capture import Capture
from portmatrix.sources.digest import FileDigest
from portmatrix.testing.captures import Pcapng, ether, frames, ip, tcp_session, write_pcap
from support.paths import REPO

CAPTURES = sorted(
    p
    for p in [
        *(REPO.parent / "shared" / "pcaps").glob("*.pcap*"),
        *(REPO / "captures").glob("*.pcap*"),
    ]
    if "invalid-version" not in p.name  # a pcap header nothing reads
)
# Names learnt from DNS answers, TLS SNI and HTTP Host (these occur in the shared captures)
WANTED = frozenset(
    {"www.google.com", "example.com", "github.com", "iscwne.walla.co.il", "clients6.google.com"}
)


def whole(path):
    table, counts, info = read_file(0, str(path), None, WANTED)
    return table.finish(), counts, info


def in_spans(path, spans):
    """(flows, counts, info) of the spans joined, and whether they joined exactly."""
    joined = from_captures._Joined()
    for span in spans:
        joined.add(read_span(0, span, WANTED))
    digest = FileDigest(str(path)).hexdigest()
    table, counts, info = from_captures._of_spans(0, str(path), joined, digest, WANTED)
    return (table.finish(), counts, info), joined.exact


def assert_same(got, expect) -> None:
    (flows, counts, info), (flows2, counts2, info2) = got, expect
    assert set(flows.cols) == set(flows2.cols)
    for name in flows.cols:
        assert flows[name].dtype == flows2[name].dtype, name
        np.testing.assert_array_equal(flows[name], flows2[name], err_msg=name)
    assert counts == counts2
    assert_same_info(info, info2)


def assert_same_info(info, info2) -> None:
    """CaptureInfo alike, the names clients gave (arrays) compared column by column."""
    assert replace(info, names=None) == replace(info2, names=None)
    claims, claims2 = info.names, info2.names
    assert (claims.names, claims.seen, claims.damaged, claims.cut, claims.dropped) == (
        claims2.names, claims2.seen, claims2.damaged, claims2.cut, claims2.dropped
    )  # fmt: skip
    for col in (*claims.COLUMNS, "name"):
        np.testing.assert_array_equal(getattr(claims, col), getattr(claims2, col), err_msg=col)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_every_capture_in_spans_is_the_capture_whole(path):
    expect = whole(path)
    for parts in (2, 3, 5):
        spans = split.cut(str(path), parts)
        if spans is not None:
            got, _ = in_spans(path, spans)
            assert_same(got, expect)


def test_most_captures_join_exactly():
    # Or the test above would prove only that reading again in one piece works.
    cut = [p for p in CAPTURES if split.cut(str(p), 2)]
    exact = [p.name for p in cut if in_spans(p, split.cut(str(p), 2))[1]]
    assert len(cut) >= 15 and len(exact) >= len(cut) - 3, (len(cut), exact)
    assert "markofu-pcaps__http-fault-post.pcap" in exact  # cut short: the message renumbered


def record_starts(path) -> list[int]:
    return [int(o) for raw in Capture(str(path)).batches() for o in raw.file_offset]


def record_bounds(path) -> set[int]:
    """Where a reader of the whole file is between records: each record's start,
    and the end of the last complete one (a file may go on with a few bytes that
    are no record, as markofu's http-fault-post does)."""
    capture = Capture(str(path))
    starts = {int(o) for raw in capture.batches() for o in raw.file_offset}
    return starts | {capture.reader.file_pos}


def spans_at(path, bounds: list[int]) -> list[split.Span]:
    return [split.Span(str(path), a, b, last=b == bounds[-1]) for a, b in pairwise(bounds)]


SPLITTABLE = [p for p in CAPTURES if len(record_starts(p)) >= 4]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_records_as_span_starts(data):
    path = data.draw(st.sampled_from(SPLITTABLE), label="capture")
    starts = record_starts(path)
    picks = data.draw(st.sets(st.integers(1, len(starts) - 1), min_size=1, max_size=4))
    bounds = [starts[0], *(starts[k] for k in sorted(picks)), path.stat().st_size]
    spans = spans_at(path, bounds)
    got, exact = in_spans(path, spans)
    assert_same(got, whole(path))
    if "fragments" not in path.name and "many_interfaces" not in path.name:
        assert exact, path.name


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_bytes_as_span_starts(data):
    path = data.draw(st.sampled_from(SPLITTABLE), label="capture")
    first, size = record_starts(path)[0], path.stat().st_size
    cuts = data.draw(st.sets(st.integers(first + 1, size - 1), min_size=1, max_size=3))
    bounds = [first, *sorted(cuts), size]
    spans = spans_at(path, bounds)
    got, exact = in_spans(path, spans)
    assert_same(got, whole(path))
    if not set(cuts) <= record_bounds(path):
        assert not exact


def test_fragments_of_a_datagram_on_both_sides_read_whole(tmp_path):
    big = ip("10.0.0.1", "10.0.0.2", id=7, flags="MF") / UDP(sport=5, dport=53) / (b"x" * 100)
    later = ip("10.0.0.1", "10.0.0.2", id=7, frag=15, proto=17) / (b"y" * 40)
    packets = [ether(big), *(ether(p) for p in tcp_session("10.0.0.3", "10.0.0.4", 1, 80))]
    path = write_pcap(tmp_path / "frag.pcap", frames([*packets, ether(later)]))
    starts = record_starts(path)
    spans = [
        split.Span(str(path), starts[0], starts[3], last=False),
        split.Span(str(path), starts[3], path.stat().st_size, last=True),
    ]
    got, exact = in_spans(path, spans)
    assert not exact  # the later fragment needs its first fragment's ports
    assert_same(got, whole(path))
    flows = got[0]
    assert int(flows["bytes_fwd"][flows["resp_port"] == 53].sum()) > 140  # joined


def test_interfaces_described_midway_read_whole(tmp_path):
    ng = Pcapng()
    ng.interface(linktype=1)
    ng.packets(tcp_session("10.0.0.1", "10.0.0.2", 1, 80))
    ng.interface(linktype=101)
    ng.packets([ip("10.0.0.5", "10.0.0.6") / UDP(sport=9, dport=53)] * 20, iface=1)
    path = ng.write(tmp_path / "late.pcapng")
    starts = record_starts(path)
    for cut in (3, 12, 20):  # before, just after and well after the description
        spans = [
            split.Span(str(path), starts[0], starts[cut], last=False),
            split.Span(str(path), starts[cut], path.stat().st_size, last=True),
        ]
        got, exact = in_spans(path, spans)
        assert exact == (cut == 3), cut  # the last span may describe one: none come after
        assert_same(got, whole(path))


def test_read_traffic_splits_one_file_among_workers(monkeypatch):
    monkeypatch.setattr(workers, "START", dict.fromkeys(workers.START, 0.0))
    path = REPO.parent / "shared" / "pcaps" / "markofu-pcaps__ftp-crack.pcap"
    calls = []
    monkeypatch.setattr(split, "cut", lambda p, n, real=split.cut: calls.append(n) or real(p, n))
    one = read_traffic([str(path)], jobs=1)
    two = read_traffic([str(path)], jobs=2)
    assert calls == [2]  # jobs=1 never plans; jobs=2 cut the file in two
    for name in one.flows.cols:
        np.testing.assert_array_equal(one.flows[name], two.flows[name], err_msg=name)
    assert one.counts == two.counts
    for info, info2 in zip(one.captures, two.captures, strict=True):
        assert_same_info(info, info2)


def test_names_clients_gave_are_joined_from_every_span():
    # The comparisons above would pass on names never learnt at all.
    path = REPO.parent / "shared" / "pcaps" / "PcapPlusPlus__4KHttpRequests.pcap"
    expect = whole(path)
    assert len(expect[2].names) or expect[2].names.seen, "no SNI/Host claims: pick another capture"
    for parts in (2, 3):
        spans = split.cut(str(path), parts)
        if spans is not None:
            assert_same(in_spans(path, spans)[0], expect)
