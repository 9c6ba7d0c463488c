"""Tunnels whose inner packets are flows of their own: IP-in-IP (4, 41), GRE
(whatever Ethernet type it carries: IP, MPLS, transparent Ethernet bridging,
and ERSPAN types I, II and III, what a remote span port sends), VXLAN (UDP 4789),
Geneve (UDP 6081) and Teredo (IPv6 in UDP, port 3544 on either side). The outer
packet stays a flow too, as tshark counts both.

`find` says where each inner packet starts and its Ethernet type (TEB for an
Ethernet frame); `ethertype.follow` takes it from there.
"""

from __future__ import annotations

import numpy as np

from portmatrix.decode import ethertype as et
from portmatrix.decode.fields import be16, u8
from portmatrix.decode.transport import UDP

IPIP, GRE_CODE, VXLAN, GENEVE, ERSPAN, TEREDO = 1, 2, 3, 4, 5, 6
GRE = 47
VXLAN_PORT, GENEVE_PORT, TEREDO_PORT = 4789, 6081, 3544
IP_IN_IP = {4: et.IPV4, 41: et.IPV6}  # IP protocol -> inner Ethernet type
ERSPAN_2, ERSPAN_3 = 0x88BE, 0x22EB
GRE_SEQUENCE = 0x1000  # GRE flag: a sequence number is present


def _carried(ptype: np.ndarray) -> np.ndarray:
    """Ethernet types a tunnel's payload can be followed through."""
    ok = (ptype == et.IPV4) | (ptype == et.IPV6)
    for t in et.LAYERS:
        ok |= ptype == t
    return ok


def _erspan(data, at, ptype, flags):
    """(header bytes, inner Ethernet type) of ERSPAN at `at`. Type I (0x88BE
    without a GRE sequence number) has no header; type II has 8 bytes; type III
    12, and 8 more when its O flag says a platform subheader follows; its frame
    type says Ethernet (0) or IP (2)."""
    type2 = (ptype == ERSPAN_2) & ((flags & GRE_SEQUENCE) != 0)
    last = u8(data, at + 11).astype(np.int64)
    size = np.where(ptype == ERSPAN_3, 12 + 8 * (last & 1), np.where(type2, 8, 0))
    frame_type = (u8(data, at + 10).astype(np.int64) >> 2) & 0x1F
    nibble = u8(data, at + size) >> 4
    ip = (ptype == ERSPAN_3) & (frame_type == 2)
    inner = np.where(ip, np.where(nibble == 6, et.IPV6, et.IPV4), et.TEB)
    return size, inner


def _teredo(data, at, end):
    """Where the IPv6 packet inside Teredo starts: after an authentication header
    (type 1: lengths of its client id and value, then 9 bytes) and an origin
    indication (type 0, 8 bytes), each optional; -1 where no IPv6 packet follows."""
    auth = be16(data, at) == 1
    size = 4 + u8(data, at + 2).astype(np.int64) + u8(data, at + 3) + 9
    at = np.where(auth & (at + 4 <= end), at + size, at)
    origin = (be16(data, at) == 0) & (at + 8 <= end)
    at = np.where(origin, at + 8, at)
    ipv6 = (at + 40 <= end) & ((u8(data, at) >> 4) == 6)
    return np.where(ipv6, at, -1)


def find(data, proto, l4pos, l4end, sport, dport, usable):
    """Rows carrying a tunnel: (row indices, inner start, inner Ethernet type, encap code)."""
    rows, starts, types, codes = [], [], [], []

    def add(sel, start, etype, code):
        rows.append(sel)
        starts.append(start)
        types.append(etype)
        codes.append(np.full(len(sel), code, np.uint8))

    for p, etype in IP_IN_IP.items():
        sel = np.flatnonzero(usable & (proto == p))
        add(sel, l4pos[sel], np.full(len(sel), etype), IPIP)

    sel = np.flatnonzero(usable & (proto == GRE) & (l4pos + 4 <= l4end))
    flags = be16(data, l4pos[sel])
    ptype = be16(data, l4pos[sel] + 2)
    hdr = 4 + 4 * ((flags >> 15) & 1) + 4 * ((flags >> 13) & 1) + 4 * ((flags >> 12) & 1)
    at = l4pos[sel] + hdr
    plain = (flags & 7) == 0  # version 1 is PPTP's enhanced GRE: PPP inside
    ok = plain & _carried(ptype)
    add(sel[ok], at[ok], ptype[ok], GRE_CODE)
    span = plain & ((ptype == ERSPAN_2) | (ptype == ERSPAN_3))
    size, inner = _erspan(data, at[span], ptype[span], flags[span])
    add(sel[span], at[span] + size, inner, ERSPAN)

    udp = usable & (proto == UDP)
    sel = np.flatnonzero(udp & (dport == VXLAN_PORT) & (l4pos + 16 <= l4end))
    sel = sel[(u8(data, l4pos[sel] + 8) & 0x08) != 0]
    add(sel, l4pos[sel] + 16, np.full(len(sel), et.TEB), VXLAN)

    sel = np.flatnonzero(udp & (dport == GENEVE_PORT) & (l4pos + 16 <= l4end))
    first = u8(data, l4pos[sel] + 8).astype(np.int64)
    sel, first = sel[(first >> 6) == 0], first[(first >> 6) == 0]
    ptype = be16(data, l4pos[sel] + 10)
    ok = _carried(ptype)
    add(sel[ok], l4pos[sel[ok]] + 16 + (first[ok] & 0x3F) * 4, ptype[ok], GENEVE)

    sel = np.flatnonzero(udp & ((sport == TEREDO_PORT) | (dport == TEREDO_PORT)))
    at = _teredo(data, l4pos[sel] + 8, l4end[sel])
    sel, at = sel[at >= 0], at[at >= 0]
    add(sel, at, np.full(len(sel), et.IPV6), TEREDO)

    return (
        np.concatenate(rows),
        np.concatenate(starts).astype(np.int64),
        np.concatenate(types).astype(np.int64),
        np.concatenate(codes),
    )
