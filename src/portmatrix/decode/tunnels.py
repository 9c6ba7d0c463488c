"""Tunnels whose inner packets are flows of their own: IP-in-IP (4, 41), GRE
(including transparent Ethernet bridging and ERSPAN), VXLAN (UDP 4789) and
Geneve (UDP 6081). The outer packet stays a flow too, as tshark counts both.
"""

from __future__ import annotations

import numpy as np

from portmatrix.decode.fields import be16, u8
from portmatrix.decode.transport import UDP

IPIP, GRE_CODE, VXLAN, GENEVE, ERSPAN = 1, 2, 3, 4, 5
GRE = 47
VXLAN_PORT, GENEVE_PORT = 4789, 6081
ETH = 0  # inner kind: an Ethernet frame (4 and 6 are IP versions)
_TYPES = {0x0800: 4, 0x86DD: 6, 0x6558: ETH}


def _inner_kind(ptype: np.ndarray) -> np.ndarray:
    """The inner packet's kind for each Ethernet type (4, 6, ETH, or -1)."""
    return np.select([ptype == t for t in _TYPES], list(_TYPES.values()), -1).astype(np.int64)


def find(data, proto, l4pos, l4end, dport, usable):
    """Rows carrying a tunnel: (row indices, inner start, inner kind, encap code)."""
    rows, starts, kinds, codes = [], [], [], []

    def add(sel, start, kind, code):
        rows.append(sel)
        starts.append(start)
        kinds.append(kind)
        codes.append(np.full(len(sel), code, np.uint8))

    for p, k in ((4, 4), (41, 6)):
        sel = np.flatnonzero(usable & (proto == p))
        add(sel, l4pos[sel], np.full(len(sel), k), IPIP)

    sel = np.flatnonzero(usable & (proto == GRE) & (l4pos + 4 <= l4end))
    flags = be16(data, l4pos[sel])
    ptype = be16(data, l4pos[sel] + 2)
    hdr = 4 + 4 * ((flags >> 15) & 1) + 4 * ((flags >> 13) & 1) + 4 * ((flags >> 12) & 1)
    plain = (flags & 7) == 0  # version 1 is PPTP's enhanced GRE: PPP inside
    kind = _inner_kind(ptype)
    ok = plain & (kind >= 0)
    add(sel[ok], l4pos[sel[ok]] + hdr[ok], kind[ok], GRE_CODE)
    erspan = plain & (ptype == 0x88BE) & (((flags >> 12) & 1) == 1)  # type II: 8-byte header
    add(sel[erspan], l4pos[sel[erspan]] + hdr[erspan] + 8, np.full(erspan.sum(), ETH), ERSPAN)

    udp = usable & (proto == UDP)
    sel = np.flatnonzero(udp & (dport == VXLAN_PORT) & (l4pos + 16 <= l4end))
    sel = sel[(u8(data, l4pos[sel] + 8) & 0x08) != 0]
    add(sel, l4pos[sel] + 16, np.full(len(sel), ETH), VXLAN)

    sel = np.flatnonzero(udp & (dport == GENEVE_PORT) & (l4pos + 16 <= l4end))
    first = u8(data, l4pos[sel] + 8).astype(np.int64)
    sel, first = sel[(first >> 6) == 0], first[(first >> 6) == 0]
    ptype = be16(data, l4pos[sel] + 10)
    kind = _inner_kind(ptype)
    ok = kind >= 0
    add(sel[ok], l4pos[sel[ok]] + 16 + (first[ok] & 0x3F) * 4, kind[ok], GENEVE)

    return (
        np.concatenate(rows),
        np.concatenate(starts).astype(np.int64),
        np.concatenate(kinds).astype(np.int64),
        np.concatenate(codes),
    )
