"""Link layers, dispatched by link type: where the network layer starts and what it is.

Ethernet (1), Linux cooked SLL (113) and SLL2 (276), raw IP (101, 12, 14, and
the per-version 228/229), BSD loopback NULL (0) and LOOP (108). Anything else is
counted per link type as unsupported.
"""

from __future__ import annotations

import numpy as np

from portmatrix.decode import batch as b
from portmatrix.decode import ethertype
from portmatrix.decode.fields import any_of, be16, be32, le32, u8

ETHERNET, NULL, RAW, RAW_12, RAW_14, LOOP, SLL, RAW_V4, RAW_V6, SLL2 = (
    1,
    0,
    101,
    12,
    14,
    108,
    113,
    228,
    229,
    276,
)
# BSD loopback address families meaning IPv6 (NetBSD/OpenBSD, FreeBSD, Darwin, Linux).
AF_INET6 = (24, 28, 30, 10)


def ethernet(data, pos, end, vlan, status):
    """Ethernet II (and 802.3/LLC, which is non-IP) from `pos`."""
    short = pos + 14 > end
    status[short] = b.TRUNC_LINK
    etype = be16(data, pos + 12)
    etype[etype < 0x0600] = -1  # an 802.3 length: LLC follows, not IP
    return ethertype.follow(data, pos + 14, end, etype, vlan, status)


def _by_version(data, pos, end, status):
    short = pos + 1 > end
    status[short] = b.TRUNC_LINK
    version = u8(data, pos) >> 4
    etype = np.where(version == 4, ethertype.IPV4, np.where(version == 6, ethertype.IPV6, -1))
    # Raw IP carries nothing but IP: another version is a damaged packet, not non-IP.
    status[(status == b.IP) & (etype < 0)] = b.BAD_IP_VERSION
    return etype


def decode(data: np.ndarray, offset: np.ndarray, caplen: np.ndarray, linktype: np.ndarray):
    """Per frame: (l3pos, l3kind 4/6/0, ethertype, vlan, status)."""
    n = len(offset)
    end = offset + caplen
    l3pos = np.zeros(n, dtype=np.int64)
    kind = np.zeros(n, dtype=np.int8)
    etype_out = np.full(n, -1, dtype=np.int64)
    vlan = np.full(n, -1, dtype=np.int32)
    status = np.full(n, b.IP, dtype=np.int8)
    single = n and (linktype == linktype[0]).all()  # the common case: one link type
    for lt in [int(linktype[0])] if single else np.unique(linktype).tolist():
        rows = slice(None) if single else np.flatnonzero(linktype == lt)
        pos, stop = offset[rows], end[rows]
        st = np.full(len(pos), b.IP, dtype=np.int8)
        vl = np.full(len(pos), -1, dtype=np.int32)
        if lt == ETHERNET:
            p, k, e = ethernet(data, pos, stop, vl, st)
        elif lt in (RAW, RAW_12, RAW_14, RAW_V4, RAW_V6):
            e = _by_version(data, pos, stop, st)
            p, k, e = ethertype.follow(data, pos, stop, e, vl, st)
        elif lt in (SLL, SLL2):
            hdr, at = (16, 14) if lt == SLL else (20, 0)
            st[pos + hdr > stop] = b.TRUNC_LINK
            e = be16(data, pos + at)
            p, k, e = ethertype.follow(data, pos + hdr, stop, e, vl, st)
        elif lt in (NULL, LOOP):
            st[pos + 4 > stop] = b.TRUNC_LINK
            # NULL: the family in the capturing host's byte order; LOOP: network order.
            family = be32(data, pos) if lt == LOOP else le32(data, pos)
            if lt == NULL:
                family = np.where(family > 0xFFFF, be32(data, pos), family)
            e = np.where(
                family == 2, ethertype.IPV4, np.where(any_of(family, AF_INET6), ethertype.IPV6, -1)
            )
            p, k, e = ethertype.follow(data, pos + 4, stop, e, vl, st)
        else:
            st[:] = b.UNSUPPORTED_LINK if lt >= 0 else b.UNKNOWN_IFACE
            p, k, e = pos, np.zeros(len(pos), dtype=np.int8), np.full(len(pos), -1)
        l3pos[rows], kind[rows], etype_out[rows] = p, k, e
        vlan[rows], status[rows] = vl, st
    return l3pos, kind, etype_out, vlan, status
