"""802.11 (link type 105) and the radio headers in front of it: radiotap (127);
PPI (192) names its inner link type and goes through the link table.

Only data frames carry packets: management and control frames are non-IP,
protected (encrypted) data frames are counted as such, and a data frame's
payload starts with LLC/SNAP, which gives the Ethernet type.
"""

from __future__ import annotations

import numpy as np

from portmatrix.decode import batch as b
from portmatrix.decode.ethertype import snap
from portmatrix.decode.fields import le32, u8, uint

IEEE802_11, RADIOTAP = 105, 127
DATA = 2  # frame type
TO_DS, FROM_DS, ORDER, PROTECTED = 0x01, 0x02, 0x80, 0x40
QOS, NO_DATA = 0x8, 0x4  # subtype bits of data frames
# Radiotap: present-word bits, the Flags field's bits.
TSFT, FLAGS, EXT = 1 << 0, 1 << 1, 1 << 31
DATA_PAD = 0x20  # padding after the 802.11 header, to a multiple of 4 bytes
MAX_PRESENT = 8


def dot11(data, pos, end, status, pad4=None):
    """An 802.11 frame: its data frames' LLC/SNAP Ethernet type; the rest non-IP."""
    status[pos + 2 > end] = b.TRUNC_LINK
    fc0 = u8(data, pos).astype(np.int64)
    fc1 = u8(data, pos + 1).astype(np.int64)
    ftype, subtype = (fc0 >> 2) & 3, fc0 >> 4
    etype = np.where(ftype == 0, b.WLAN_MANAGEMENT, b.WLAN_CONTROL).astype(np.int64)
    data_frame = (status == b.IP) & (ftype == DATA)
    etype[data_frame & ((subtype & NO_DATA) != 0)] = b.WLAN_NO_DATA
    rows = np.flatnonzero(data_frame & ((subtype & NO_DATA) == 0))
    qos = (subtype[rows] & QOS) != 0
    four_addr = (fc1[rows] & (TO_DS | FROM_DS)) == (TO_DS | FROM_DS)
    size = 24 + 6 * four_addr + 2 * qos + 4 * (qos & ((fc1[rows] & ORDER) != 0))
    if pad4 is not None:
        size = np.where(pad4[rows], (size + 3) & ~3, size)
    pos = pos.copy()
    pos[rows] += size
    short = rows[pos[rows] > end[rows]]
    status[short] = b.TRUNC_LINK
    rows = rows[pos[rows] <= end[rows]]
    status[rows[(fc1[rows] & PROTECTED) != 0]] = b.ENCRYPTED_WLAN
    rows = rows[(fc1[rows] & PROTECTED) == 0]
    snap(data, pos, end, etype, rows)
    return pos, etype


def radiotap(data, pos, end, status):
    """A radiotap header (little-endian, its own length), then 802.11; its Flags
    field says whether the 802.11 header is padded."""
    status[pos + 8 > end] = b.TRUNC_LINK
    length = uint(data, pos + 2, 2, little=True)
    status[(status == b.IP) & ((u8(data, pos) != 0) | (length < 8) | (pos + length > end))] = (
        b.TRUNC_LINK
    )
    present = le32(data, pos + 4)
    # Fields start after the chain of present words (bit 31: another word follows).
    word_at = np.full(len(pos), 4, np.int64)
    live = np.ones(len(pos), bool)
    for _ in range(MAX_PRESENT):
        live &= ((le32(data, pos + word_at) & EXT) != 0) & (word_at + 8 <= length)
        if not live.any():
            break
        word_at += 4 * live
    fields_at = word_at + 4
    at = np.where((present & TSFT) != 0, ((fields_at + 7) & ~7) + 8, fields_at)
    has_flags = ((present & FLAGS) != 0) & (at < length)
    pad4 = has_flags & ((u8(data, pos + at) & DATA_PAD) != 0)
    return dot11(data, pos + length, end, status, pad4)
