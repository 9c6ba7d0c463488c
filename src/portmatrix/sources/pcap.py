"""Classic libpcap files: both byte orders, microsecond and nanosecond magic.

Where each record starts is found by the record walk (`walk.pcap_walk`, C when
built); timestamps and lengths are then gathered with numpy from those offsets.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np

from portmatrix.decode.batch import RawBatch
from portmatrix.errors import CaptureError
from portmatrix.sources import chunks
from portmatrix.sources.base import CaptureInfo, Interface
from portmatrix.sources.chunks import Chunks
from portmatrix.sources.walk import pcap_walk

MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
HEADER = 24
RECORD = 16


class PcapReader:
    def __init__(self, stream, info: CaptureInfo, head: bytes, ahead: bool = False) -> None:
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
        info.format = "pcap" if self.ns_per_tick == 1000 else "pcap-ns"
        info.interfaces.append(
            Interface(
                linktype=self.linktype,
                snaplen=snaplen,
                tsresol=6 if self.ns_per_tick == 1000 else 9,
            )
        )
        # A record longer than this means a corrupt length, not a big packet: longer
        # than the snaplen (some writers understate it: never less than 256 KiB), or
        # than any packet (a snaplen of 0xFFFFFFFF must not buffer the whole file).
        self.limit = min(max(snaplen, 262144), chunks.MAX_RECORD)
        self.chunks = Chunks(stream, head[HEADER:], chunks.CHUNK, ahead)
        self.file_pos = HEADER  # file offset of the current chunk's first byte

    def batches(self) -> Iterator[RawBatch]:
        frame = 0
        while True:
            data = self.chunks.next()
            records, end, corrupt = pcap_walk(data, self.little, self.limit)
            if len(records):
                yield self._batch(data, records, frame)
                frame += len(records)
            self.info.frames = frame
            self.chunks.keep(data, end)
            self.file_pos += end
            if corrupt >= 0:
                self.info.truncated = (
                    f"corrupt record length {corrupt} at byte {self.file_pos} (record "
                    f"{frame + 1}); stopped reading there"
                )
                return
            if self.chunks.eof:
                left = len(data) - end
                if left:
                    self.info.truncated = (
                        f"file cut short in the middle of record {frame + 1} at byte "
                        f"{self.file_pos} ({left} bytes left); analyzed up to there"
                    )
                return

    def _batch(self, data: np.ndarray, records: np.ndarray, first_frame: int) -> RawBatch:
        pos = records[:, 0]
        count = len(pos)
        return RawBatch(
            data=data,
            offset=pos + RECORD,
            caplen=records[:, 3],
            wirelen=records[:, 4],
            ts=records[:, 1] * 1_000_000_000 + records[:, 2] * self.ns_per_tick,
            linktype=np.full(count, self.linktype, dtype=np.int32),
            iface=np.zeros(count, dtype=np.int32),
            frame=np.arange(first_frame + 1, first_frame + count + 1, dtype=np.int64),
            file_offset=pos + self.file_pos,
        )
