"""Link layers, dispatched through one table (`LINKS`: link type -> decoder):
where the network layer starts and what it is.

Each decoder takes the frames of its link type, `(data, pos, end, status)`, and
returns where the next header starts and its Ethernet type (or one of
`batch.LINK_NON_IP`); `ethertype.follow` walks on from there. Adding a link
type is one entry. A link type missing from the table is counted as unsupported.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from portmatrix.decode import batch as b
from portmatrix.decode import ethertype, nflog, ppp, wlan
from portmatrix.decode.fields import any_of, be16, be32, le32, u8, uint

ETHERNET, NULL, LOOP, SLL, SLL2, PPI, NETLINK = 1, 0, 108, 113, 276, 192, 253
RAW_IP = (101, 12, 14, 228, 229)  # the version nibble says which
# BSD loopback address families meaning IPv6 (NetBSD/OpenBSD, FreeBSD, Darwin, Linux).
AF_INET6 = (24, 28, 30, 10)


def _ethernet(data, pos, end, status):
    """Ethernet II; 802.3 with LLC/SNAP; other LLC is non-IP."""
    status[pos + 14 > end] = b.TRUNC_LINK
    etype = be16(data, pos + 12)
    pos = pos + 14
    ethertype.snap(data, pos, end, etype, np.flatnonzero(etype < 0x0600))
    return pos, etype


def ethernet(data, pos, end, vlan, status):
    """An Ethernet frame at `pos`, down to the network layer: (l3pos, l3kind, etype)."""
    pos, etype = _ethernet(data, pos, end, status)
    return ethertype.follow(data, pos, end, etype, vlan, status)


def _raw(data, pos, end, status):
    status[pos + 1 > end] = b.TRUNC_LINK
    version = u8(data, pos) >> 4
    etype = np.where(
        version == 4, ethertype.IPV4, np.where(version == 6, ethertype.IPV6, -1)
    ).astype(np.int64)
    # Raw IP carries nothing but IP: another version is a damaged packet, not non-IP.
    status[(status == b.IP) & (etype < 0)] = b.BAD_IP_VERSION
    return pos, etype


def _cooked(header: int, type_at: int) -> Callable:
    """Linux cooked captures: a fixed header holding the Ethernet type."""

    def decoder(data, pos, end, status):
        status[pos + header > end] = b.TRUNC_LINK
        return pos + header, be16(data, pos + type_at)

    return decoder


def _family(data, pos, end, status, network_order: bool):
    """BSD loopback: a 4-byte address family (NULL: in the capturing host's byte
    order, either; LOOP: network order)."""
    status[pos + 4 > end] = b.TRUNC_LINK
    family = be32(data, pos) if network_order else le32(data, pos)
    if not network_order:
        family = np.where(family > 0xFFFF, be32(data, pos), family)
    etype = np.where(
        family == 2, ethertype.IPV4, np.where(any_of(family, AF_INET6), ethertype.IPV6, -1)
    )
    return pos + 4, etype


def _netlink(data, pos, end, status):
    """Linux netlink messages (nlmon): never IP, counted as such."""
    return pos, np.full(len(pos), b.NETLINK, np.int64)


def _ppi(data, pos, end, status):
    """Per-Packet Information: a little-endian header naming the link type inside."""
    status[pos + 8 > end] = b.TRUNC_LINK
    length = uint(data, pos + 2, 2, little=True)
    inner = le32(data, pos + 4)
    status[(status == b.IP) & ((length < 8) | (pos + length > end))] = b.TRUNC_LINK
    return by_link_type(data, pos + length, end, inner, status, outer=PPI)


LINKS: dict[int, Callable] = {
    ETHERNET: _ethernet,
    **dict.fromkeys(RAW_IP, _raw),
    SLL: _cooked(16, 14),
    SLL2: _cooked(20, 0),
    NULL: lambda data, pos, end, status: _family(data, pos, end, status, False),
    LOOP: lambda data, pos, end, status: _family(data, pos, end, status, True),
    ppp.PPP: ppp.ppp,
    ppp.PPP_HDLC: ppp.ppp_hdlc,
    ppp.C_HDLC: ppp.cisco_hdlc,
    nflog.NFLOG: nflog.nflog,
    wlan.IEEE802_11: wlan.dot11,
    wlan.RADIOTAP: wlan.radiotap,
    PPI: _ppi,
    NETLINK: _netlink,
}


def by_link_type(data, pos, end, linktype, status, outer: int | None = None):
    """Each frame's link header by its link type: (next header position, its type).
    Frames of a link type no decoder knows get status UNSUPPORTED_LINK (or
    UNKNOWN_IFACE for link type -1, a packet of an undescribed interface)."""
    pos = pos.astype(np.int64, copy=True)
    etype = np.full(len(pos), -1, np.int64)
    n = len(pos)
    single = n and (linktype == linktype[0]).all()  # the common case: one link type
    for lt in [int(linktype[0])] if single else np.unique(linktype).tolist():
        rows = slice(None) if single else np.flatnonzero(linktype == lt)
        decoder = LINKS.get(lt) if lt != outer else None  # no PPI inside PPI
        if decoder is None:
            status[rows] = b.UNSUPPORTED_LINK if lt >= 0 else b.UNKNOWN_IFACE
            continue
        st = status[rows]
        p, e = decoder(data, pos[rows], end[rows], st)
        pos[rows], etype[rows], status[rows] = p, e, st
    return pos, etype


def decode(data: np.ndarray, offset: np.ndarray, caplen: np.ndarray, linktype: np.ndarray):
    """Per frame: (l3pos, l3kind 4/6/0, ethertype, vlan, status)."""
    n = len(offset)
    end = offset + caplen
    vlan = np.full(n, -1, dtype=np.int32)
    status = np.full(n, b.IP, dtype=np.int8)
    pos, etype = by_link_type(data, offset, end, linktype, status)
    l3pos, kind, etype = ethertype.follow(data, pos, end, etype, vlan, status)
    return l3pos, kind, etype, vlan, status
