"""What an Ethernet type leads to, one table entry per layer: VLAN and QinQ tags,
VN-Tag and 802.1BR E-tags, PBB (802.1ah), MPLS label stacks (with or without a
pseudowire control word), PPPoE sessions, a bridged Ethernet frame (GRE-TEB,
VXLAN, ERSPAN), and finally IPv4, IPv6 or something else (counted as non-IP).
MACsec is encrypted: counted, not opened.

`LAYERS` maps an Ethernet type to the function that steps over its header;
adding an encapsulation is one entry there (and, if the compiled fast path
should not call it non-IP, one in `_common.c`'s list; a test keeps the two equal).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from portmatrix.decode import batch as b
from portmatrix.decode.fields import any_of, be16, be32, u8

IPV4, IPV6 = 0x0800, 0x86DD
VLAN_TAGS = (0x8100, 0x88A8, 0x9100, 0x9200)
MPLS = (0x8847, 0x8848)
PPPOE_SESSION = 0x8864
VNTAG, ETAG, PBB, MACSEC = 0x8926, 0x893F, 0x88E7, 0x88E5
TEB = 0x6558  # "an Ethernet frame follows" (GRE transparent Ethernet bridging)
MAX_LAYERS = b.MAX_LAYERS  # tags, labels, nested Ethernet: deeper is undecodable
# What the Ethernet type of a frame in a pseudowire is likely to be.
FRAME_TYPES = (IPV4, IPV6, 0x0806, *VLAN_TAGS, *MPLS)

# PPP protocol numbers (PPP links, PPPoE, Cisco HDLC carries Ethernet types) -> the
# Ethernet type of what follows. Others stay non-IP, as minus the PPP protocol.
PPP_PROTOCOLS = {0x0021: IPV4, 0x0057: IPV6, 0x0281: MPLS[0], 0x0283: MPLS[1]}


def ppp_ethertype(protocol: np.ndarray) -> np.ndarray:
    out = -protocol.astype(np.int64)
    for ppp, etype in PPP_PROTOCOLS.items():
        out[protocol == ppp] = etype
    return out


# Every layer: step(data, pos, end, etype, vlan, status, rows) moves `pos` and
# `etype` of `rows` (all carrying this layer's type) past its header, in place.
# A header cut short sets status TRUNC_LINK; the caller skips rows no longer IP.


def _need(pos, end, status, rows, size) -> np.ndarray:
    """The rows whose next `size` bytes were captured; the others are cut short."""
    short = pos[rows] + size > end[rows]
    status[rows[short]] = b.TRUNC_LINK
    return rows[~short]


def _tag(size: int, at: int, vlan_id: bool = False) -> Callable:
    """A tag of `size` bytes whose last two bytes (at `at`) are the next type."""

    def step(data, pos, end, etype, vlan, status, rows):
        rows = _need(pos, end, status, rows, size)
        if vlan_id:
            first = rows[vlan[rows] < 0]  # the outer tag is the one recorded
            vlan[first] = be16(data, pos[first]) & 0x0FFF
        etype[rows] = be16(data, pos[rows] + at)
        pos[rows] += size

    return step


def _ethernet(data, pos, end, etype, vlan, status, rows):
    """A whole Ethernet header: destination, source, type (802.3 with SNAP too)."""
    rows = _need(pos, end, status, rows, 14)
    etype[rows] = be16(data, pos[rows] + 12)
    pos[rows] += 14
    snap(data, pos, end, etype, rows[etype[rows] < 0x0600])


def snap(data, pos, end, etype, rows) -> None:
    """An 802.2 LLC header at `pos`: with SNAP and an Ethernet OUI (RFC 1042 or
    802.1H), the Ethernet type it carries; any other LLC is non-IP (-1)."""
    etype[rows] = -1
    ok = rows[pos[rows] + 8 <= end[rows]]
    head = be32(data, pos[ok])
    oui = be32(data, pos[ok] + 2) & 0xFFFFFF
    ok = ok[((head >> 8) == 0xAAAA03) & ((oui == 0) | (oui == 0xF8))]
    etype[ok] = be16(data, pos[ok] + 6)
    pos[ok] += 8


def _pbb(data, pos, end, etype, vlan, status, rows):
    """802.1ah: a 4-byte I-tag (service instance), then the customer's Ethernet frame."""
    rows = _need(pos, end, status, rows, 4)
    pos[rows] += 4
    _ethernet(data, pos, end, etype, vlan, status, rows)


def _pppoe(data, pos, end, etype, vlan, status, rows):
    """A PPPoE session header (6 bytes), then a PPP protocol number."""
    rows = _need(pos, end, status, rows, 8)
    etype[rows] = ppp_ethertype(be16(data, pos[rows] + 6))
    pos[rows] += 8


def _mpls(data, pos, end, etype, vlan, status, rows):
    """Pop an MPLS label stack; guess the payload from its first nibble, as routers do."""
    live = rows
    for _ in range(MAX_LAYERS):
        if not len(live):
            break
        live = _need(pos, end, status, live, 4)
        label = be32(data, pos[live])
        pos[live] += 4
        live = live[(label & 0x100) == 0]  # bottom of stack not reached yet
    status[live] = b.TOO_MANY_LAYERS  # still no bottom of the stack
    rows = rows[status[rows] == b.IP]
    nibble = u8(data, pos[rows]) >> 4
    etype[rows] = np.where(nibble == 4, IPV4, np.where(nibble == 6, IPV6, TEB))
    # Otherwise an Ethernet pseudowire, with a control word (first nibble 0) or
    # without: the one whose Ethernet type looks like a frame's wins (as Wireshark's
    # heuristic does); a first nibble 0 with neither is taken as a control word.
    pw = rows[(nibble != 4) & (nibble != 6)]
    plain = any_of(be16(data, pos[pw] + 12), FRAME_TYPES)
    word = (u8(data, pos[pw]) >> 4 == 0) & (any_of(be16(data, pos[pw] + 16), FRAME_TYPES) | ~plain)
    pos[pw[word]] += 4
    status[pw[~word & ~plain]] = b.BAD_MPLS


def _encrypted(data, pos, end, etype, vlan, status, rows):
    status[rows] = b.ENCRYPTED_MACSEC


LAYERS: dict[int, Callable] = {
    **dict.fromkeys(VLAN_TAGS, _tag(4, 2, vlan_id=True)),
    VNTAG: _tag(6, 4),  # Cisco VN-Tag: 4 bytes of tag
    ETAG: _tag(8, 6),  # 802.1BR E-tag: 6 bytes of tag
    PBB: _pbb,
    **dict.fromkeys(MPLS, _mpls),
    PPPOE_SESSION: _pppoe,
    TEB: _ethernet,
    MACSEC: _encrypted,
}


def follow(
    data: np.ndarray,
    pos: np.ndarray,
    end: np.ndarray,
    etype: np.ndarray,
    vlan: np.ndarray,
    status: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From `etype` found just before `pos`, walk the layers down to the network layer.

    Returns (l3pos, l3kind, final ethertype); updates `vlan` (outer tag wins) and
    `status` in place. l3kind is 4, 6 or 0 (not IP).
    """
    pos = pos.astype(np.int64, copy=True)
    etype = etype.astype(np.int64, copy=True)
    for _ in range(MAX_LAYERS):
        active = np.flatnonzero(status == b.IP)
        present = np.unique(etype[active]).tolist() if len(active) else []
        steps = [t for t in present if t in LAYERS]
        if not steps:
            break
        for t in steps:
            rows = active[etype[active] == t]
            LAYERS[t](data, pos, end, etype, vlan, status, rows)
    else:  # the limit reached: whatever still has a layer to step over is too deep
        active = np.flatnonzero(status == b.IP)
        status[active[any_of(etype[active], tuple(LAYERS))]] = b.TOO_MANY_LAYERS
    kind = np.zeros(len(pos), dtype=np.int8)
    ok = status == b.IP
    kind[ok & (etype == IPV4)] = 4
    kind[ok & (etype == IPV6)] = 6
    status[ok & (kind == 0)] = b.NON_IP
    return pos, kind, etype
