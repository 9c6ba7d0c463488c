"""Find where each record starts in a buffer of capture data.

This is the only per-packet loop in reading a capture. The compiled module
`_walk` does it in C when it was built (it is optional: a build without a
compiler still works); the pure-Python walks here are the fallback and the
reference the tests compare it with.
"""

from __future__ import annotations

import struct

import numpy as np

try:
    from portmatrix.sources import _walk as _compiled
except ImportError:  # built without a C compiler
    _compiled = None

# pcapng block types: section header, interface description and statistics (read by
# the reader), and the packet blocks (enhanced, simple, obsolete).
SHB, IDB, ISB, EPB, SPB, OPB = 0x0A0D0D0A, 1, 5, 6, 3, 2
PACKET_BLOCKS = (EPB, SPB, OPB)
CONTROL, CORRUPT, MISMATCH = 1, 2, 3  # pcapng stop reasons (0: need more data)


TYPICAL = 64  # bytes per record the output of a compiled walk is first sized for
ROWS = 1 << 14  # rows of output a walk is given at most per call


def _in_parts(walk, buf, width: int, more: int) -> tuple[np.ndarray, int, int]:
    """Run a compiled walk with an output sized for typical records (at most ROWS),
    again from where it stopped while it stops for want of room (status `more`):
    sizing it for the smallest possible records would allocate ~25 MB per chunk.

    A walk that stopped early (a pcapng control block after a few packets) keeps
    a copy of its rows, not a view that holds the whole output: a capture with an
    interface block before every packet would otherwise hold one output per
    packet (4 GB of address space and 0.5 GB of memory per 100k packets)."""
    parts, off = [], 0
    mv = memoryview(buf)
    while True:
        out = np.empty((min((len(mv) - off) // TYPICAL + 16, ROWS), width), np.int64)
        count, end, status = walk(mv[off:], out)
        out[:count, 0] += off
        parts.append(out[:count] if 2 * count >= len(out) else out[:count].copy())
        off += end
        if count < len(out) or status != more:
            break
    records = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return records, off, status


def pcap_walk(buf, little: bool, limit: int, compiled: bool = True) -> tuple[np.ndarray, int, int]:
    """(records, end of the last complete record, corrupt length or -1).

    `records` has one row per record: start offset, seconds, fraction of a
    second, captured length, wire length.
    """
    if compiled and _compiled is not None:
        return _in_parts(lambda b, out: _compiled.pcap_walk(b, out, little, limit), buf, 5, -1)
    at = struct.Struct("<I" if little else ">I").unpack_from
    mv = memoryview(buf).cast("B")
    n = len(mv)
    starts, off, corrupt = [], 0, -1
    while off + 16 <= n:
        incl = at(mv, off + 8)[0]
        if incl > limit:
            corrupt = incl
            break
        end = off + 16 + incl
        if end > n:
            break
        starts.append(off)
        off = end
    pos = np.array(starts, np.int64)
    header = np.frombuffer(mv, np.uint8)[pos[:, None] + np.arange(16)]
    words = header.view("<u4" if little else ">u4").reshape(-1, 4).astype(np.int64)
    return np.column_stack([pos, words]), off, corrupt


def pcapng_walk(
    buf, little: bool, max_block: int, compiled: bool = True
) -> tuple[np.ndarray, int, int]:
    """(packet blocks, where the walk stopped, why).

    `blocks` has one row per packet block: start, type, length, and the five
    32-bit words at offsets 8 to 24 (0 past the end of the buffer). Stops before
    a section header, interface description or statistics block (CONTROL),
    which the caller interprets; skips other blocks by length.
    """
    if compiled and _compiled is not None:
        return _in_parts(lambda b, out: _compiled.pcapng_walk(b, out, little, max_block), buf, 8, 0)
    at = struct.Struct("<I" if little else ">I").unpack_from
    mv = memoryview(buf).cast("B")
    n = len(mv)
    blocks, off, reason = [], 0, 0
    while off + 12 <= n:
        btype, blen = at(mv, off)[0], at(mv, off + 4)[0]
        if btype in (SHB, IDB, ISB):
            reason = CONTROL
            break
        if blen < 12 or blen % 4 or blen > max_block:
            reason = CORRUPT
            break
        end = off + blen
        if end > n:
            break
        if at(mv, end - 4)[0] != blen:
            reason = MISMATCH
            break
        if btype in PACKET_BLOCKS:
            words = [at(mv, w)[0] if w + 4 <= n else 0 for w in range(off + 8, off + 28, 4)]
            blocks.append([off, btype, blen, *words])
        off = end
    return np.array(blocks, np.int64).reshape(-1, 8), off, reason
