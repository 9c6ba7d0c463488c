"""One large capture file read by several workers: byte ranges (spans) that start
at record boundaries.

A span's start is found by resynchronising: from a nominal offset, the first
position where a chain of plausible record headers begins (classic pcap: each
header's lengths and timestamp fraction plausible, each length leading exactly
to the next header; pcapng: each block's length repeated at its end). The
chain can still be fooled by packet bytes that happen to look like headers, so
every boundary is verified after the fact: the span before it must end exactly
where the next one starts (its last record's end), or the reader of the whole
file would have seen other records there; `flows.from_captures` then reads the
file again in one piece. A span reads the file's header (pcap) or the blocks
before its first packet (pcapng: section header, interface descriptions) from
the start of the file, so it decodes its records as a reader of the whole file
would; it numbers its frames from 1 (the caller adds the frames before it).
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass

from portmatrix.errors import CaptureError
from portmatrix.sources.base import CaptureInfo
from portmatrix.sources.pcap import HEADER, PcapReader
from portmatrix.sources.pcap import MAGICS as PCAP_MAGICS
from portmatrix.sources.pcapng import BOM, MAX_BLOCK, PcapngReader
from portmatrix.sources.walk import EPB, IDB, ISB, OPB, SHB, SPB

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
CHAIN = 12  # headers in a row that must be plausible
WINDOW = 4 << 20  # bytes searched for a start after a nominal offset
SLACK = 86_400  # seconds a chain's timestamps may spread (a day)
# Block types a pcapng span may start at: packets, statistics, name resolution,
# decryption secrets, systemd journal, custom.
RESUMABLE = (EPB, SPB, OPB, ISB, 4, 9, 10, 0x00000BAD, 0x40000BAD)


@dataclass(frozen=True)
class Span:
    """Records starting in [start, end) of one capture file."""

    path: str
    start: int
    end: int
    last: bool  # the file's last span: it reads to the end, as a whole-file reader does


@dataclass(frozen=True)
class _Layout:
    """What a span needs to know about its file before its first record."""

    pcapng: bool
    little: bool
    head: bytes  # pcap: the file header; pcapng: the blocks before the first packet
    limit: int  # longest plausible record (pcap) or block (pcapng)
    ns: bool  # pcap: nanosecond timestamps
    interfaces: int  # described before the first packet (pcap: its one interface)


def cut(path: str, parts: int) -> list[Span] | None:
    """`parts` spans of about equal size covering the records of `path`, or None
    when it cannot be cut (not a plain pcap or pcapng file, too small, or no
    start found after a nominal offset)."""
    if parts < 2:
        return None
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            layout = _layout(fh)
            if layout is None:
                return None
            first = len(layout.head)
            starts = [first]
            for k in range(1, parts):
                nominal = first + (size - first) * k // parts
                fh.seek(nominal)
                window = fh.read(WINDOW)
                at = _resync(layout, window, nominal)
                if at is None or at <= starts[-1]:
                    return None
                starts.append(at)
    except OSError:
        return None
    ends = [*starts[1:], size]
    return [
        Span(path, a, b, last=k == parts - 1)
        for k, (a, b) in enumerate(zip(starts, ends, strict=True))
    ]


def _layout(fh) -> _Layout | None:
    head = fh.read(4096)
    if head[:4] in PCAP_MAGICS:
        try:  # the limit on record lengths the reader itself keeps to
            reader = PcapReader(io.BytesIO(), CaptureInfo(path=""), head[:HEADER])
        except CaptureError:
            return None
        ns = reader.ns_per_tick == 1
        return _Layout(False, reader.little, head[:HEADER], reader.limit, ns, 1)
    if head[:4] != PCAPNG_MAGIC or len(head) < 12:
        return None
    little = struct.unpack_from("<I", head, 8)[0] == BOM
    if not little and struct.unpack_from(">I", head, 8)[0] != BOM:
        return None
    end = "<" if little else ">"
    # The preamble: every block before the first packet block, read from the start.
    fh.seek(0)
    pos, blocks = 0, []
    while True:
        header = fh.read(8)
        if len(header) < 8:
            return None
        btype, blen = struct.unpack(end + "II", header)
        if btype in (EPB, SPB, OPB):
            break
        if blen < 12 or blen % 4 or blen > MAX_BLOCK or (btype == SHB and pos):
            return None  # damaged, or several sections: read it in one piece
        blocks.append(header + fh.read(blen - 8))
        pos += blen
    # The interfaces those blocks describe, as the reader numbers them.
    preamble, info = b"".join(blocks), CaptureInfo(path="")
    reader = PcapngReader(io.BytesIO(), info, preamble)
    for _ in reader.batches():
        return None  # a packet among them: not a preamble after all
    if info.truncated or reader.section != 0:
        return None
    return _Layout(True, little, preamble, MAX_BLOCK, False, len(info.interfaces))


def _resync(layout: _Layout, window: bytes, offset: int) -> int | None:
    """The file offset of the first chain of plausible headers in `window` (read
    at file offset `offset`; shorter than WINDOW only at the end of the file), or
    None."""
    step, first = (4, -offset % 4) if layout.pcapng else (1, 0)
    chain = _pcapng_chain if layout.pcapng else _pcap_chain
    word = struct.Struct(("<" if layout.little else ">") + "IIII")
    at_end = len(window) < WINDOW
    for at in range(first, max(len(window) - 12, 0), step):
        if chain(layout, word, window, at, at_end):
            return offset + at
    return None


def _pcap_chain(layout: _Layout, word: struct.Struct, window: bytes, at: int, at_end: bool) -> bool:
    tick = 1_000_000_000 if layout.ns else 1_000_000
    first_sec = None
    for k in range(CHAIN):
        if at + 16 > len(window):
            return k > 0 and at_end and at == len(window)  # the file ends at a boundary
        sec, frac, incl, orig = word.unpack_from(window, at)
        if not (0 < incl <= layout.limit and incl <= orig and frac < tick and sec):
            return False
        first_sec = sec if first_sec is None else first_sec
        if abs(sec - first_sec) > SLACK:
            return False
        at += 16 + incl
    return True


def _pcapng_chain(
    layout: _Layout, word: struct.Struct, window: bytes, at: int, at_end: bool
) -> bool:
    trailer = struct.Struct(word.format[0] + "I")
    for k in range(CHAIN):
        if at + 12 > len(window):
            return k > 0 and at_end and at == len(window)  # the file ends at a boundary
        btype, blen, iface = struct.unpack_from(word.format[:4], window[at : at + 12])
        plausible = btype in RESUMABLE or (k and btype in (SHB, IDB))
        if not plausible or blen < 12 or blen % 4 or blen > layout.limit:
            return False
        if at + blen > len(window):
            return k > 0 and not at_end  # a long block past the window: enough seen
        if trailer.unpack_from(window, at + blen - 4)[0] != blen:
            return False
        if btype == EPB and iface >= max(layout.interfaces, 1):
            return False
        at += blen
    return True


class SpanCapture:
    """The records of one span, read as `sources.capture.Capture` reads a file:
    iterate `batches()`, then read `info` (its `frames` are the span's) and
    `end` (where its last complete record ended: the next span's start, when
    the boundary was right)."""

    def __init__(self, span: Span) -> None:
        self.span = span
        self.info = CaptureInfo(path=span.path)
        try:
            self._file = open(span.path, "rb")  # noqa: SIM115 - closed in batches()
        except OSError as exc:
            raise CaptureError(f"cannot open: {exc.strerror}", file=span.path) from None
        self.info.size = os.fstat(self._file.fileno()).st_size
        layout = _layout(self._file)
        if layout is None:
            self._file.close()
            raise CaptureError("the file changed while it was read", file=span.path)
        self._file.seek(span.start)
        stream = _Window(self._file, span.end - span.start)
        if layout.pcapng:
            self.reader = PcapngReader(stream, self.info, layout.head)
            # The preamble comes first in the reader's data: offsets count from
            # the span's start once it is consumed.
            self.reader.file_pos = span.start - len(layout.head)
        else:
            self.reader = PcapReader(stream, self.info, layout.head)
            self.reader.file_pos = span.start
        self._interfaces = layout.interfaces

    def reuse_buffers(self) -> None:
        """As `Capture.reuse_buffers`: the caller is done with each batch first."""
        self.reader.chunks.settle = _nothing

    @property
    def end(self) -> int:
        return self.reader.file_pos

    @property
    def context_changed(self) -> bool:
        """Did the span describe interfaces or start a section (pcapng), or name
        interfaces while decoding (NFLOG rules)? Then the frames after it would be
        numbered or labelled otherwise by a reader of the whole file."""
        section = getattr(self.reader, "section", 0)
        return len(self.info.interfaces) != self._interfaces or section != 0

    def batches(self):
        try:
            yield from self.reader.batches()
        except CaptureError as exc:
            where = f" at {exc.where}" if exc.where else ""
            self.info.truncated = f"{exc.what}{where}; analyzed up to there"
        finally:
            self.reader.chunks.close()
            self.info.bytes_read = self.reader.file_pos
            self._file.close()


def _nothing() -> None:
    pass


class _Window:
    """`length` bytes of a file from where it stands: a span's stream."""

    def __init__(self, fh, length: int) -> None:
        self.fh = fh
        self.left = length

    def readinto(self, buf) -> int:
        view = memoryview(buf)[: self.left]
        n = self.fh.readinto(view) if len(view) else 0
        self.left -= n
        return n

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(self.left if n < 0 else min(n, self.left))
        self.left -= len(data)
        return data
