"""What an Ethernet type leads to: VLAN and QinQ tag stacks, MPLS label stacks,
PPPoE sessions, and finally IPv4, IPv6 or something else (counted as non-IP).
"""

from __future__ import annotations

import numpy as np

from portmatrix.decode import batch as b
from portmatrix.decode.fields import any_of, be16, be32, u8

VLAN_TAGS = (0x8100, 0x88A8, 0x9100, 0x9200)
MPLS = (0x8847, 0x8848)
PPPOE_SESSION = 0x8864
IPV4, IPV6 = 0x0800, 0x86DD
MAX_LAYERS = 12  # tags + labels + nested Ethernet one frame may stack


def follow(
    data: np.ndarray,
    pos: np.ndarray,
    end: np.ndarray,
    etype: np.ndarray,
    vlan: np.ndarray,
    status: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From `etype` found just before `pos`, walk tag stacks down to the network layer.

    Returns (l3pos, l3kind, final ethertype); updates `vlan` (outer tag wins) and
    `status` in place. l3kind is 4, 6 or 0 (not IP).
    """
    pos = pos.copy()
    etype = etype.copy()
    kind = np.zeros(len(pos), dtype=np.int8)
    active = status == b.IP
    for _ in range(MAX_LAYERS):
        tagged = active & any_of(etype, VLAN_TAGS)
        if tagged.any():
            i = np.flatnonzero(tagged)
            short = pos[i] + 4 > end[i]
            status[i[short]] = b.TRUNC_LINK
            i = i[~short]
            tag = be16(data, pos[i]) & 0x0FFF
            first = vlan[i] < 0
            vlan[i[first]] = tag[first]
            etype[i] = be16(data, pos[i] + 2)
            pos[i] += 4
        mpls = active & any_of(etype, MPLS) & (status == b.IP)
        if mpls.any():
            _mpls(data, pos, end, etype, status, np.flatnonzero(mpls))
        pppoe = active & (etype == PPPOE_SESSION) & (status == b.IP)
        if pppoe.any():
            i = np.flatnonzero(pppoe)
            short = pos[i] + 8 > end[i]
            status[i[short]] = b.TRUNC_LINK
            i = i[~short]
            ppp = be16(data, pos[i] + 6)
            etype[i] = np.where(ppp == 0x0021, IPV4, np.where(ppp == 0x0057, IPV6, -ppp))
            pos[i] += 8
        active &= status == b.IP
        if not (active & any_of(etype, VLAN_TAGS + MPLS + (PPPOE_SESSION,))).any():
            break
    ok = status == b.IP
    kind[ok & (etype == IPV4)] = 4
    kind[ok & (etype == IPV6)] = 6
    status[ok & (kind == 0)] = b.NON_IP
    return pos, kind, etype


def _mpls(data, pos, end, etype, status, rows) -> None:
    """Pop an MPLS label stack; guess the payload from its first nibble, as routers do."""
    live = rows
    for _ in range(MAX_LAYERS):
        if not len(live):
            break
        short = pos[live] + 4 > end[live]
        status[live[short]] = b.TRUNC_LINK
        live = live[~short]
        label = be32(data, pos[live])
        pos[live] += 4
        live = live[(label & 0x100) == 0]  # bottom of stack not reached yet
    rows = rows[status[rows] == b.IP]
    nibble = u8(data, pos[rows]) >> 4
    etype[rows] = np.where(nibble == 4, IPV4, np.where(nibble == 6, IPV6, 0))
    # Nibble 0: a pseudowire control word, then an Ethernet frame.
    pw = rows[nibble == 0]
    short = pos[pw] + 4 + 14 > end[pw]
    status[pw[short]] = b.TRUNC_LINK
    pw = pw[~short]
    etype[pw] = be16(data, pos[pw] + 4 + 12)
    pos[pw] += 4 + 14
    bad = rows[(nibble != 4) & (nibble != 6) & (nibble != 0)]
    status[bad] = b.BAD_MPLS
