"""pcapng files: sections in either byte order, several interfaces with their own
link type and time resolution, enhanced/simple/obsolete packet blocks, and the
interface statistics blocks that carry capture drops. Unknown blocks are skipped
by their length.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator

import numpy as np

from portmatrix.decode.batch import RawBatch
from portmatrix.errors import CaptureError
from portmatrix.sources import chunks
from portmatrix.sources.base import CaptureInfo, Interface, InterfaceStats
from portmatrix.sources.chunks import Chunks
from portmatrix.sources.walk import CONTROL, EPB, IDB, ISB, OPB, SHB, SPB, pcapng_walk

BOM = 0x1A2B3C4D
MAX_BLOCK = 256 << 20


def _options(body: bytes, endian: str) -> Iterator[tuple[int, bytes]]:
    """(code, value) of each option in a block's option area."""
    pos = 0
    while pos + 4 <= len(body):
        code, length = struct.unpack_from(endian + "HH", body, pos)
        if code == 0:
            return
        yield code, body[pos + 4 : pos + 4 + length]
        pos += 4 + ((length + 3) & ~3)


class PcapngReader:
    def __init__(self, stream, info: CaptureInfo, head: bytes, ahead: bool = False) -> None:
        self.info = info
        info.format = "pcapng"
        if len(head) < 12 or (
            struct.unpack_from("<I", head, 8)[0] != BOM
            and struct.unpack_from(">I", head, 8)[0] != BOM
        ):
            raise CaptureError(
                "pcapng byte-order magic is damaged",
                file=info.path,
                where="byte 8",
                hint="the file is damaged or not pcapng",
            )
        self.chunks = Chunks(stream, head, chunks.CHUNK, ahead)
        self.file_pos = 0  # file offset of the current chunk's first byte
        self.endian = "<"
        self.section = -1
        self.last_ts: int | None = None  # of the last packet: simple blocks carry it on
        # Interfaces of the current section map to global interface numbers.
        self.section_ifaces: list[int] = []

    def batches(self) -> Iterator[RawBatch]:
        frame = 0
        while True:
            data = self.chunks.next()
            n = len(data)
            off = 0
            problem = ""
            while True:
                blocks, stop, reason = pcapng_walk(data[off:], self.endian == "<", MAX_BLOCK)
                if len(blocks):
                    if self.section < 0:
                        problem = "packet block before any section header"
                        break
                    blocks[:, 0] += off
                    yield self._batch(data, blocks, frame)
                    frame += len(blocks)
                off += stop
                if reason != CONTROL:
                    if reason:
                        problem = (
                            "corrupt block length"
                            if reason == 2
                            else "block's trailing length does not match its leading length"
                        )
                    break
                used = self._control_block(data, off)
                if used < 0:
                    problem = "damaged section header (byte-order magic)"
                    break
                if used == 0:  # the control block is not complete in this chunk
                    break
                off += used
            self.info.frames = frame
            self.chunks.keep(data, off)
            self.file_pos += off
            if problem:
                self.info.truncated = (
                    f"{problem} at byte {self.file_pos} (after record "
                    f"{frame}); stopped reading there"
                )
                return
            if self.chunks.eof:
                if n - off:
                    self.info.truncated = (
                        f"file cut short in the middle of a block at byte {self.file_pos} "
                        f"(after record {frame}, {n - off} bytes left); analyzed up to there"
                    )
                return

    def _control_block(self, data: np.ndarray, off: int) -> int:
        """Interpret the section/interface/statistics block at `off`: its length,
        0 when it is not complete yet, -1 when it is damaged."""
        head = bytes(data[off : off + 12])
        if len(head) < 12:
            return 0
        endian = self.endian
        if struct.unpack_from("<I", head, 0)[0] == SHB:
            bom = head[8:12]
            endian = (
                "<"
                if struct.unpack("<I", bom)[0] == BOM
                else (">" if struct.unpack(">I", bom)[0] == BOM else "")
            )
            if not endian:
                return -1
        btype, blen = struct.unpack_from(endian + "II", head, 0)
        if blen < 12 or blen % 4 or blen > MAX_BLOCK:
            return -1
        if off + blen > len(data):
            return 0
        block = bytes(data[off : off + blen])
        if struct.unpack_from(endian + "I", block, blen - 4)[0] != blen:
            return -1
        self._control(btype, endian, block, off)
        return blen

    def _control(self, btype: int, endian: str, block: bytes, off: int) -> None:
        if btype == SHB:
            self.endian = endian
            self.section += 1
            self.section_ifaces = []
        elif btype == IDB:
            linktype, _reserved, snaplen = struct.unpack_from(endian + "HHI", block, 8)
            iface = Interface(linktype=linktype, snaplen=snaplen)
            for code, value in _options(block[16:-4], endian):
                if code == 2:
                    iface.name = value.decode("utf-8", "replace").rstrip("\0")
                elif code == 9 and value:
                    iface.tsresol = value[0]
                    exp = value[0] & 0x7F
                    if exp > (63 if value[0] & 0x80 else 19):
                        raise CaptureError(
                            f"interface {len(self.section_ifaces)} has a time resolution "
                            f"out of range (if_tsresol {value[0]:#04x})",
                            file=self.info.path,
                            where=f"byte {self.file_pos + off}",
                            hint="the interface description block is damaged",
                        )
                elif code == 14 and len(value) == 8:
                    iface.tsoffset = struct.unpack(endian + "q", value)[0]
            self.section_ifaces.append(len(self.info.interfaces))
            self.info.interfaces.append(iface)
        elif btype == ISB:
            local = struct.unpack_from(endian + "I", block, 8)[0]
            if local >= len(self.section_ifaces):
                self.info.notices.append(
                    f"statistics for unknown interface {local} at byte {self.file_pos + off}"
                )
                return
            stats = InterfaceStats(iface=self.section_ifaces[local])
            names = {
                4: "received",
                5: "dropped",
                6: "filter_accepted",
                7: "os_dropped",
                8: "delivered",
            }
            for code, value in _options(block[20:-4], endian):
                if code in names and len(value) == 8:
                    setattr(stats, names[code], struct.unpack(endian + "Q", value)[0])
            self.info.stats[stats.iface] = stats

    def _carry_time(self, ts: np.ndarray, timed: np.ndarray) -> np.ndarray:
        """A simple packet block has no timestamp: it gets the time of the packet
        before it (of an earlier batch too); packets before any timed one get the
        first timed one's, or, in a file without any, the file's modification time."""
        index = np.maximum.accumulate(np.where(timed, np.arange(len(ts)), -1))
        if self.last_ts is None:
            first = np.flatnonzero(timed)
            self.last_ts = int(ts[first[0]]) if len(first) else _fallback_time(self.info.path)
        out = np.where(index >= 0, ts[np.maximum(index, 0)], self.last_ts)
        self.last_ts = int(out[-1])
        return out

    def _batch(self, data: np.ndarray, blocks: np.ndarray, first_frame: int) -> RawBatch:
        """Packet blocks, as the walk found them, into a batch."""
        pos, kind, blen, w8, w12, w16, w20, w24 = blocks.T
        count = len(pos)
        epb, spb, opb = kind == EPB, kind == SPB, kind == OPB
        # An obsolete packet block's interface id is 16 bits, its drop count the next 16.
        opb_iface = w8 & 0xFFFF if self.endian == "<" else w8 >> 16
        local = np.where(epb, w8, np.where(opb, opb_iface, 0))
        timed = epb | opb
        ticks = ((w12 << 32) | w16).astype(np.uint64) * timed  # 64 bits of two words
        caplen = np.where(timed, w20, 0)
        wirelen = np.where(timed, w24, np.where(spb, w8, 0))
        caplen = np.where(spb, np.minimum(wirelen, blen - 16), caplen)
        start = np.where(spb, pos + 12, pos + 28)
        # Never let a packet run past its own block.
        caplen = np.clip(caplen, 0, np.maximum(pos + blen - 4 - start, 0))

        mapping = np.array([*self.section_ifaces, -1], dtype=np.int64)
        known = local < len(self.section_ifaces)
        iface = np.where(known, mapping[np.minimum(local, len(self.section_ifaces))], -1)
        linktypes = np.array([i.linktype for i in self.info.interfaces] + [-1], dtype=np.int32)
        linktype = linktypes[iface]
        ts = np.zeros(count, dtype=np.int64)
        if count and (iface == iface[0]).all():  # the common case: one interface
            present = [int(iface[0])] if iface[0] >= 0 else []
        else:
            present = np.unique(iface[known]).tolist()
        for i in present:
            rows = iface == i
            ts[rows] = _to_ns(ticks[rows], self.info.interfaces[i])
        carried = None
        if spb.any():
            carried = spb
            ts = self._carry_time(ts, timed)
        elif count:
            self.last_ts = int(ts[-1])
        return RawBatch(
            ts_carried=carried,
            data=data,
            offset=start,
            caplen=caplen,
            wirelen=wirelen,
            ts=ts,
            linktype=linktype,
            iface=iface.astype(np.int32),
            frame=np.arange(first_frame + 1, first_frame + count + 1, dtype=np.int64),
            file_offset=pos + self.file_pos,
        )


def _fallback_time(path: str) -> int:
    """A time for packets before any timed one: when the file was last written
    (the capture ended then), or now for a stream."""
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return time.time_ns()


def _to_ns(ticks: np.ndarray, iface: Interface) -> np.ndarray:
    """Nanoseconds since the epoch from an interface's timestamp ticks."""
    exp = iface.tsresol & 0x7F
    if iface.tsresol & 0x80:  # 2^-exp seconds per tick
        sec = (ticks >> np.uint64(exp)).astype(np.int64)
        frac = (ticks & np.uint64((1 << exp) - 1)).astype(np.float64)
        ns = sec * 1_000_000_000 + np.floor(frac * 1e9 / float(1 << exp)).astype(np.int64)
    elif exp <= 9:
        ns = ticks.astype(np.int64) * (10 ** (9 - exp))
    else:
        ns = (ticks // np.uint64(10 ** (exp - 9))).astype(np.int64)
    return ns + iface.tsoffset * 1_000_000_000
