"""Classic libpcap files: both byte orders, microsecond and nanosecond magic.

The record walk is the only per-packet loop in the reader: it finds where each
record starts. Everything else (timestamps, lengths) is gathered with numpy
from those offsets.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np

from portmatrix.errors import CaptureError
from portmatrix.sources.base import CaptureInfo, Interface, RawBatch
from portmatrix.sources.chunks import CHUNK, gather_u32, padded

MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
HEADER = 24
RECORD = 16
MAX_RECORD = 256 << 20  # a larger record length means a corrupt file, not a big packet


class PcapReader:
    def __init__(self, stream, info: CaptureInfo, head: bytes) -> None:
        self.stream = stream
        self.info = info
        if len(head) < HEADER:
            raise CaptureError(
                f"the pcap file header is cut short ({len(head)} of 24 bytes)",
                file=info.path,
                where="byte 0",
                hint="the file is damaged or empty",
            )
        endian, self.ns_per_tick = MAGICS[head[:4]]
        self.little = endian == "<"
        major, minor, _zone, _sigfigs, snaplen, network = struct.unpack(
            endian + "HHiIII", head[4:HEADER]
        )
        if major != 2:
            raise CaptureError(
                f"pcap version {major}.{minor} is not supported (only 2.x is)",
                file=info.path,
                where="byte 4",
                hint="the file header is damaged, or this is not a pcap file",
            )
        # The top bits of the link type can carry FCS information (pcap-linktype(7)).
        self.linktype = network & 0x0FFFFFFF
        self.snaplen = snaplen
        info.format = "pcap" if self.ns_per_tick == 1000 else "pcap-ns"
        info.interfaces.append(
            Interface(
                linktype=self.linktype,
                snaplen=snaplen,
                tsresol=6 if self.ns_per_tick == 1000 else 9,
            )
        )
        self.limit = max(snaplen, 262144, 65535)
        self.leftover = head[HEADER:]
        self.file_pos = HEADER  # file offset of leftover[0]

    def batches(self) -> Iterator[RawBatch]:
        frame = 0
        incl_at = struct.Struct(("<" if self.little else ">") + "I").unpack_from
        while True:
            chunk = self.stream.read(CHUNK)
            buf = self.leftover + chunk if self.leftover else chunk
            n = len(buf)
            starts = []
            off = 0
            corrupt = None
            while off + RECORD <= n:
                incl = incl_at(buf, off + 8)[0]
                if incl > self.limit:
                    corrupt = incl
                    break
                end = off + RECORD + incl
                if end > n:
                    break
                starts.append(off)
                off = end
            if starts:
                yield self._batch(buf, starts, off, frame)
                frame += len(starts)
            self.info.frames = frame
            self.file_pos += off
            self.leftover = buf[off:]
            if corrupt is not None:
                self.info.truncated = (
                    f"corrupt record length {corrupt} at byte {self.file_pos} (record "
                    f"{frame + 1}); stopped reading there"
                )
                return
            if not chunk:
                if self.leftover:
                    self.info.truncated = (
                        f"file cut short in the middle of record {frame + 1} at byte "
                        f"{self.file_pos} ({len(self.leftover)} bytes left); analyzed up to there"
                    )
                return

    def _batch(self, buf: bytes, starts: list[int], end: int, first_frame: int) -> RawBatch:
        data = padded(buf, end)
        pos = np.array(starts, dtype=np.int64)
        sec = gather_u32(data, pos, self.little).astype(np.int64)
        frac = gather_u32(data, pos + 4, self.little).astype(np.int64)
        caplen = gather_u32(data, pos + 8, self.little).astype(np.int64)
        wirelen = gather_u32(data, pos + 12, self.little).astype(np.int64)
        count = len(starts)
        return RawBatch(
            data=data,
            offset=pos + RECORD,
            caplen=caplen,
            wirelen=wirelen,
            ts=sec * 1_000_000_000 + frac * self.ns_per_tick,
            linktype=np.full(count, self.linktype, dtype=np.int32),
            iface=np.zeros(count, dtype=np.int32),
            frame=np.arange(first_frame + 1, first_frame + count + 1, dtype=np.int64),
            file_offset=pos + self.file_pos,
        )
