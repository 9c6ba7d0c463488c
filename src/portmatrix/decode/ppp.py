"""Serial links: PPP (link type 9), PPP in HDLC-like framing (50) and Cisco HDLC
(104). PPP names what follows by a PPP protocol number (IPv4, IPv6, MPLS; the
rest is non-IP, counted as minus the number); Cisco HDLC by an Ethernet type.
"""

from __future__ import annotations

import numpy as np

from portmatrix.decode import batch as b
from portmatrix.decode.ethertype import ppp_ethertype
from portmatrix.decode.fields import be16, u8

PPP, PPP_HDLC, C_HDLC = 9, 50, 104
HDLC_ADDRESS = 0xFF  # PPP's all-stations address, followed by control 0x03
CISCO_ADDRESSES = (0x0F, 0x8F)  # Cisco HDLC unicast and broadcast


def _protocol(data, pos, end, status):
    """A PPP protocol field: one byte when compressed (odd first byte), else two."""
    status[pos + 1 > end] = b.TRUNC_LINK
    short = (u8(data, pos) & 1) == 1
    status[(status == b.IP) & ~short & (pos + 2 > end)] = b.TRUNC_LINK
    protocol = np.where(short, u8(data, pos).astype(np.int64), be16(data, pos))
    return pos + np.where(short, 1, 2), ppp_ethertype(protocol)


def ppp(data, pos, end, status):
    """PPP, with or without the HDLC-like address and control bytes (ff 03)."""
    framed = (pos + 2 <= end) & (be16(data, pos) == 0xFF03)
    return _protocol(data, pos + np.where(framed, 2, 0), end, status)


def cisco_hdlc(data, pos, end, status):
    """Cisco HDLC: address, control, then an Ethernet type."""
    status[pos + 4 > end] = b.TRUNC_LINK
    return pos + 4, be16(data, pos + 2)


def ppp_hdlc(data, pos, end, status):
    """PPP in HDLC-like framing; Cisco's HDLC shares the link type (RFC 1547)."""
    status[pos + 2 > end] = b.TRUNC_LINK
    pos = pos.copy()
    etype = np.full(len(pos), -1, np.int64)
    cisco = np.isin(u8(data, pos), CISCO_ADDRESSES)
    for sel, decoder, skip in ((cisco, cisco_hdlc, 0), (~cisco, _protocol, 2)):
        st = status[sel]
        pos[sel], etype[sel] = decoder(data, pos[sel] + skip, end[sel], st)
        status[sel] = st
    return pos, etype
