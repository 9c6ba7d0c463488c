"""pcapng files: sections in either byte order, several interfaces with their own
link type and time resolution, enhanced/simple/obsolete packet blocks, and the
interface statistics blocks that carry capture drops. Unknown blocks are skipped
by their length.

Hostile files cost time in proportion to their blocks: the packet blocks of a
whole chunk make one batch however many interface, section or statistics
blocks come between them; identical interface descriptions (a file made by
concatenating captures repeats them in every section) are one interface; more
than MAX_INTERFACES distinct ones, or a block longer than MAX_RECORD, stop the
read as damage. A timestamp out of range (a time resolution or offset that
overflows, a time before 1970 or after 2262) is data: the packet keeps the time
of the packet before and is counted.
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
from portmatrix.sources.base import MAX_INTERFACES, CaptureInfo, Interface, InterfaceStats
from portmatrix.sources.chunks import Chunks
from portmatrix.sources.walk import CONTROL, EPB, IDB, ISB, OPB, SHB, SPB, pcapng_walk

BOM = 0x1A2B3C4D
MAX_BLOCK = chunks.MAX_RECORD
INT64_MAX = (1 << 63) - 1
STATS = {4: "received", 5: "dropped", 6: "filter_accepted", 7: "os_dropped", 8: "delivered"}


def _options(body: bytes, endian: str) -> Iterator[tuple[int, bytes]]:
    """(code, value) of each option in a block's option area."""
    pos = 0
    while pos + 4 <= len(body):
        code, length = struct.unpack_from(endian + "HH", body, pos)
        if code == 0:
            return
        yield code, body[pos + 4 : pos + 4 + length]
        pos += 4 + ((length + 3) & ~3)


class _Damaged(Exception):
    """A control block that stops the read (its text says why)."""


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
        # The current section's interfaces (in the order described) -> interface numbers
        # of the capture; the slot after the last one holds -1 (not described).
        self.section_map = np.full(MAX_INTERFACES + 1, -1, np.int64)
        self.section_ifaces = 0
        # (description, how many identical ones came before it in its section) -> number
        self._described: dict[tuple, int] = {}
        self._in_section: dict[tuple, int] = {}
        self._times = _InterfaceTimes()
        # Statistics: the last of each interface in this section, and earlier sections' sums.
        self._section_stats: dict[int, InterfaceStats] = {}
        self._earlier_stats: dict[int, InterfaceStats] = {}
        self._stray_stats: list[int] = []  # [count, first interface, its byte] of stray ones

    def batches(self) -> Iterator[RawBatch]:
        frame = 0
        try:
            while True:
                data = self.chunks.next()
                off, parts, problem = self._walk_chunk(data)
                if parts:
                    batch = self._batch(data, parts, frame)
                    frame += len(batch)
                    self.info.frames = frame
                    yield batch
                self.chunks.keep(data, off)
                self.file_pos += off
                if problem:
                    self.info.truncated = (
                        f"{problem} at byte {self.file_pos} (after record "
                        f"{frame}); stopped reading there"
                    )
                    return
                if self.chunks.eof:
                    if len(data) - off:
                        self.info.truncated = (
                            f"file cut short in the middle of a block at byte {self.file_pos} "
                            f"(after record {frame}, {len(data) - off} bytes left); analyzed up "
                            "to there"
                        )
                    return
        finally:
            self._close_section()
            self._say_stray_stats()

    def _walk_chunk(self, data: np.ndarray) -> tuple[int, list[np.ndarray], str]:
        """Walk a chunk's blocks: (where the complete blocks end, the packet blocks
        found, with their interface numbers resolved, and why reading must stop)."""
        off, parts = 0, []
        while True:
            blocks, stop, reason = pcapng_walk(data[off:], self.endian == "<", MAX_BLOCK)
            if len(blocks):
                if self.section < 0:
                    return off, parts, "packet block before any section header"
                blocks[:, 0] += off
                parts.append(self._resolve(blocks))
            off += stop
            if reason != CONTROL:
                if reason == 2:
                    return off, parts, "corrupt block length"
                if reason:
                    return off, parts, "block's trailing length does not match its leading length"
                return off, parts, ""
            try:
                used = self._control_block(data, off)
            except _Damaged as exc:
                return off, parts, str(exc)
            if used == 0:  # the control block is not complete in this chunk
                return off, parts, ""
            off += used

    def _resolve(self, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The walk's rows, and the capture's interface number of each packet, as the
        current section maps its interfaces (-1: never described)."""
        kind, w8 = blocks[:, 1], blocks[:, 3]
        # An obsolete packet block's interface id is 16 bits, its drop count the next 16.
        opb_iface = w8 & 0xFFFF if self.endian == "<" else w8 >> 16
        local = np.where(kind == EPB, w8, np.where(kind == OPB, opb_iface, 0))
        local = np.minimum(local, self.section_ifaces)  # past the last: the -1 slot
        return blocks, self.section_map[local]

    def _control_block(self, data: np.ndarray, off: int) -> int:
        """Interpret the section/interface/statistics block at `off`: its length,
        or 0 when it is not complete yet; raises _Damaged when it is damaged."""
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
                raise _Damaged("damaged section header (byte-order magic)")
        btype, blen = struct.unpack_from(endian + "II", head, 0)
        if blen < 12 or blen % 4 or blen > MAX_BLOCK:
            raise _Damaged("corrupt block length")
        if off + blen > len(data):
            return 0
        block = bytes(data[off : off + blen])
        if struct.unpack_from(endian + "I", block, blen - 4)[0] != blen:
            raise _Damaged("block's trailing length does not match its leading length")
        if btype == SHB:
            self._close_section()
            self.endian = endian
            self.section += 1
            self.section_map[:] = -1
            self.section_ifaces = 0
            self._in_section = {}
        elif btype == IDB:
            if blen < 20:
                raise _Damaged(f"interface description block too short ({blen} bytes)")
            self._interface(block, endian)
        elif btype == ISB and blen >= 24:
            self._statistics(block, endian, off)
        return blen

    def _interface(self, block: bytes, endian: str) -> None:
        """An interface description: the next interface of the section; one described
        identically in an earlier section keeps its number."""
        if self.section_ifaces >= MAX_INTERFACES:
            raise _Damaged(f"more than {MAX_INTERFACES} interfaces in one section")
        linktype, _reserved, snaplen = struct.unpack_from(endian + "HHI", block, 8)
        iface = Interface(linktype=linktype, snaplen=snaplen)
        for code, value in _options(block[16:-4], endian):
            if code == 2:
                iface.name = value.decode("utf-8", "replace").rstrip("\0")
            elif code == 9 and value:
                iface.tsresol = value[0]
            elif code == 14 and len(value) == 8:
                iface.tsoffset = struct.unpack(endian + "q", value)[0]
        described = (iface.linktype, iface.name, iface.snaplen, iface.tsresol, iface.tsoffset)
        # Two identical descriptions in one section are two interfaces; in two sections
        # (captures concatenated), one.
        again = self._in_section.get(described, 0)
        self._in_section[described] = again + 1
        key = (described, again)
        number = self._described.get(key)
        if number is None:
            if len(self._described) >= MAX_INTERFACES:
                raise _Damaged(f"more than {MAX_INTERFACES} different interfaces")
            number = len(self.info.interfaces)
            self.info.interfaces.append(iface)
            self._described[key] = number
        self.section_map[self.section_ifaces] = number
        self.section_ifaces += 1

    def _statistics(self, block: bytes, endian: str, off: int) -> None:
        """An interface statistics block: the last one of a section wins; sections add."""
        local = struct.unpack_from(endian + "I", block, 8)[0]
        if local >= self.section_ifaces:
            if not self._stray_stats:
                self._stray_stats = [0, local, self.file_pos + off]
            self._stray_stats[0] += 1
            return
        number = int(self.section_map[local])
        stats = InterfaceStats(iface=number)
        for code, value in _options(block[20:-4], endian):
            if code in STATS and len(value) == 8:
                setattr(stats, STATS[code], struct.unpack(endian + "Q", value)[0])
        self._section_stats[number] = stats
        earlier = self._earlier_stats.get(number)
        self.info.stats[number] = earlier.plus(stats) if earlier else stats

    def _close_section(self) -> None:
        """Fold the ending section's statistics into the sums of earlier sections."""
        for number, stats in self._section_stats.items():
            earlier = self._earlier_stats.get(number)
            self._earlier_stats[number] = earlier.plus(stats) if earlier else stats
        self._section_stats = {}

    def _say_stray_stats(self) -> None:
        """One notice for every statistics block about an undescribed interface."""
        if self._stray_stats:
            count, local, at = self._stray_stats
            more = f" (and {count - 1} more such blocks)" if count > 1 else ""
            self.info.notices.append(f"statistics for unknown interface {local} at byte {at}{more}")
            self._stray_stats = []

    def _carry_time(self, ts: np.ndarray, timed: np.ndarray) -> np.ndarray:
        """A packet without a usable time (a simple packet block has none; another's
        may be out of range) gets the time of the packet before it (of an earlier
        batch too); packets before any timed one get the first timed one's, or, in
        a file without any, the file's modification time."""
        index = np.maximum.accumulate(np.where(timed, np.arange(len(ts)), -1))
        if self.last_ts is None:
            first = np.flatnonzero(timed)
            self.last_ts = int(ts[first[0]]) if len(first) else _fallback_time(self.info.path)
        out = np.where(index >= 0, ts[np.maximum(index, 0)], self.last_ts)
        self.last_ts = int(out[-1])
        return out

    def _batch(self, data: np.ndarray, parts: list[tuple], first_frame: int) -> RawBatch:
        """Packet blocks, as the walk found them and `_resolve` numbered their
        interfaces, into a batch."""
        if len(parts) == 1:
            ((blocks, iface),) = parts
        else:
            blocks = np.concatenate([b for b, _ in parts])
            iface = np.concatenate([i for _, i in parts])
        pos, kind, blen, _w8, w12, w16, w20, w24 = blocks.T
        count = len(pos)
        epb, spb, opb = kind == EPB, kind == SPB, kind == OPB
        timed = epb | opb
        ticks = ((w12 << 32) | w16).astype(np.uint64) * timed  # 64 bits of two words
        caplen = np.where(timed, w20, 0)
        wirelen = np.where(timed, w24, np.where(spb, _w8, 0))
        caplen = np.where(spb, np.minimum(wirelen, blen - 16), caplen)
        start = np.where(spb, pos + 12, pos + 28)
        # Never let a packet run past its own block.
        caplen = np.clip(caplen, 0, np.maximum(pos + blen - 4 - start, 0))

        linktype, ts, ok = self._times.convert(self.info.interfaces, iface, ticks)
        unknown = timed & ~ok & (iface >= 0)
        usable = timed & ok
        carried = None
        if (spb | unknown).any():
            ts = self._carry_time(ts, usable)
            carried = spb if spb.any() else None
        elif count:
            self.last_ts = int(ts[-1])
        return RawBatch(
            ts_carried=carried,
            ts_unknown=unknown if unknown.any() else None,
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


class _InterfaceTimes:
    """Each interface's link type and clock (resolution, offset) as arrays, so every
    packet's time is converted at once whatever the number of interfaces."""

    def __init__(self) -> None:
        self.size = 0
        self.linktype = np.zeros(1, np.int32)
        self.resol = np.zeros(1, np.int64)
        self.offset = np.zeros(1, np.int64)  # ns
        self.valid = np.zeros(1, bool)  # resolution and offset in range

    def _update(self, interfaces: list[Interface]) -> None:
        """Add the interfaces described since the last batch (the last slot stays
        for packets on no interface: link type -1)."""
        new = interfaces[self.size :]
        if not new:
            return
        offsets = [i.tsoffset * 1_000_000_000 for i in new]
        fits = [-INT64_MAX <= o <= INT64_MAX for o in offsets]
        resol_ok = [(i.tsresol & 0x7F) <= (63 if i.tsresol & 0x80 else 19) for i in new]

        def grown(old: np.ndarray, values: list, dtype, last) -> np.ndarray:
            return np.concatenate([old[:-1], np.array(values, dtype), np.array([last], dtype)])

        self.linktype = grown(self.linktype, [i.linktype for i in new], np.int32, -1)
        self.resol = grown(self.resol, [i.tsresol for i in new], np.int64, 6)
        self.offset = grown(
            self.offset, [o if f else 0 for o, f in zip(offsets, fits, strict=True)], np.int64, 0
        )
        self.valid = grown(
            self.valid, [a and b for a, b in zip(fits, resol_ok, strict=True)], bool, False
        )
        self.size = len(interfaces)

    def convert(self, interfaces: list[Interface], iface: np.ndarray, ticks: np.ndarray):
        """(link type, ns since the epoch, whether the time is in range) per packet."""
        self._update(interfaces)
        at = np.where(iface >= 0, iface, self.size)
        if len(at) and (at == at[0]).all():  # the common case: one interface's clock
            k = int(at[0])
            ns, ok = _to_ns_one(ticks, int(self.resol[k]), int(self.offset[k]))
            linktype = np.full(len(at), self.linktype[k], np.int32)
            return linktype, ns, ok & bool(self.valid[k])
        ns, ok = to_ns(ticks, self.resol[at], self.offset[at])
        return self.linktype[at], ns, ok & self.valid[at]


def _to_ns_one(ticks: np.ndarray, resol: int, offset_ns: int):
    """`to_ns` for packets that all have one interface's clock: a decimal resolution
    of at most ns per tick (nearly every capture) without per-packet arrays."""
    exp = resol & 0x7F
    if resol & 0x80 or exp > 9:
        n = len(ticks)
        return to_ns(ticks, np.full(n, resol, np.int64), np.full(n, offset_ns, np.int64))
    mul = 10 ** (9 - exp)
    ticks = ticks.astype(np.uint64, copy=False)
    ok = ticks <= np.uint64(INT64_MAX // mul)
    ns = (ticks * np.uint64(mul)).view(np.int64)  # wrapped where not ok: never used
    ok &= (ns >= -min(offset_ns, 0)) & (ns <= INT64_MAX - max(offset_ns, 0))
    return np.where(ok, ns + offset_ns, 0), ok


def to_ns(ticks: np.ndarray, resol: np.ndarray, offset_ns: np.ndarray):
    """(ns since the epoch, in range) from timestamp ticks, each with its interface's
    `if_tsresol` byte (10^-n s per tick, or 2^-n with the top bit set) and offset.

    A time is in range when it fits int64 nanoseconds and is not before 1970;
    out-of-range times come out as 0, never wrapped."""
    ticks = ticks.astype(np.uint64)
    exp = (resol & 0x7F).astype(np.int64)
    binary = (resol & 0x80) != 0
    ns = np.zeros(len(ticks), np.int64)
    ok = np.zeros(len(ticks), bool)
    # Decimal, at most ns per tick: multiply, where the product fits.
    sel = np.flatnonzero(~binary & (exp <= 9))
    if len(sel):
        mul = (10 ** (9 - exp[sel])).astype(np.uint64)
        fits = ticks[sel] <= np.uint64(INT64_MAX) // mul
        ns[sel] = np.where(fits, ticks[sel] * mul, 0).astype(np.int64)
        ok[sel] = fits
    # Decimal, finer than ns (up to 10^-19 s): divide, always in range.
    sel = np.flatnonzero(~binary & (exp > 9) & (exp <= 19))
    if len(sel):
        ns[sel] = (ticks[sel] // (10 ** (exp[sel] - 9)).astype(np.uint64)).astype(np.int64)
        ok[sel] = True
    # Binary (up to 2^-63 s): whole seconds and the fraction apart.
    sel = np.flatnonzero(binary & (exp <= 63))
    if len(sel):
        shift = exp[sel].astype(np.uint64)
        sec = ticks[sel] >> shift
        frac = (ticks[sel] & ((np.uint64(1) << shift) - np.uint64(1))).astype(np.float64)
        fits = sec <= np.uint64(INT64_MAX // 1_000_000_000 - 1)
        part = np.floor(frac * 1e9 / np.exp2(exp[sel].astype(np.float64))).astype(np.int64)
        whole = np.where(fits, sec, 0).astype(np.int64) * 1_000_000_000
        ns[sel] = np.where(fits, whole + part, 0)
        ok[sel] = fits
    # The interface's offset, where the sum stays within 1970..2262.
    low = -np.minimum(offset_ns, 0)
    high = INT64_MAX - np.maximum(offset_ns, 0)
    ok &= (ns >= low) & (ns <= high)
    return np.where(ok, ns + np.where(ok, offset_ns, 0), 0), ok


def _fallback_time(path: str) -> int:
    """A time for packets before any timed one: when the file was last written
    (the capture ended then), or now for a stream."""
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return time.time_ns()
