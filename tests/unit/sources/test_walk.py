"""The compiled record walks against their pure-Python versions (the reference):
the same records, stop offset and stop reason, on real captures cut anywhere and
on corrupt lengths."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portmatrix.sources import walk
from support.paths import REPO

SHARED = REPO.parent / "shared" / "pcaps"
PCAPS = sorted(
    p
    for p in [*SHARED.glob("*.pcap"), *(REPO / "captures").glob("*.pcap")]
    if "invalid" not in p.name
)
PCAPNGS = sorted([*SHARED.glob("*.pcapng"), *(REPO / "captures").glob("*.pcapng")])

pytestmark = pytest.mark.skipif(
    walk._compiled is None and not os.environ.get("CI"), reason="built without a C compiler"
)


def test_built_where_ci_runs():
    assert walk._compiled is not None, "the C extension portmatrix.sources._walk was not built"


def pcap_records(path: Path) -> tuple[bytes, bool]:
    data = path.read_bytes()
    return data[24:], data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")


def same_pcap(buf: bytes, little: bool, limit: int = 262144) -> None:
    fast = walk.pcap_walk(buf, little, limit)
    ref = walk.pcap_walk(buf, little, limit, compiled=False)
    np.testing.assert_array_equal(fast[0], ref[0])
    assert fast[1:] == ref[1:]


def same_pcapng(buf: bytes, little: bool) -> None:
    fast = walk.pcapng_walk(buf, little, 1 << 20)
    ref = walk.pcapng_walk(buf, little, 1 << 20, compiled=False)
    np.testing.assert_array_equal(fast[0], ref[0])
    assert fast[1:] == ref[1:]


@pytest.mark.parametrize("path", PCAPS, ids=lambda p: p.name)
def test_pcap_walk_matches_python_wherever_the_buffer_ends(path):
    buf, little = pcap_records(path)
    for cut in sorted({len(buf), len(buf) // 2, len(buf) // 3 + 5, 17, 15, 0}):
        same_pcap(buf[:cut], little)
    same_pcap(buf, little, limit=60)  # a "corrupt" length: stops at the first big record


def each_block(path: Path):
    """(file bytes, little-endian, offset of each block)."""
    buf = path.read_bytes()
    little = buf[8:12] == b"\x4d\x3c\x2b\x1a"
    off = 0
    while off < len(buf):
        yield buf, little, off
        length = int.from_bytes(buf[off + 4 : off + 8], "little" if little else "big")
        off += max(length, 12)


@pytest.mark.parametrize("path", PCAPNGS, ids=lambda p: p.name)
def test_pcapng_walk_matches_python_from_every_block(path):
    for buf, little, off in each_block(path):  # from each block on, as the reader does
        same_pcapng(buf[off:], little)
        same_pcapng(buf[off : off + 100], little)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_walks_match_python_on_garbage(buf, little):
    same_pcap(buf, little, limit=200)
    same_pcapng(buf, little)


def test_walks_continue_when_their_output_is_full(monkeypatch):
    """Outputs sized for few records: the compiled walks run again from where they
    stopped, and still find what the Python walks find."""
    monkeypatch.setattr(walk, "TYPICAL", 4096)
    for path in PCAPS:
        same_pcap(*pcap_records(path))
    for path in PCAPNGS:
        for buf, little, off in each_block(path):
            same_pcapng(buf[off:], little)


def test_a_walk_stopped_early_holds_only_its_rows():
    """A packet block, then an interface block, in a large buffer (a capture with an
    interface described before every packet): the one row found must not keep the
    whole output sized for the buffer alive, or each packet holds megabytes."""
    epb = np.zeros(8, "<u4")
    epb[[0, 1, 7]] = 6, 32, 32  # type, length; no data; trailing length
    idb = np.array([1, 20, 1, 0, 20], "<u4")  # link type 1, snaplen 0
    buf = epb.tobytes() + idb.tobytes() + bytes(8 << 20)
    records, stop, reason = walk.pcapng_walk(buf, True, 1 << 20)
    assert (len(records), stop, reason) == (1, 32, walk.CONTROL)
    held = records.base.nbytes if records.base is not None else records.nbytes
    assert held <= 4 * records.nbytes
    # A full output is kept as it is, not copied.
    many = epb.tobytes() * 2000
    rows, _, _ = walk.pcapng_walk(many, True, 1 << 20)
    assert len(rows) == 2000
