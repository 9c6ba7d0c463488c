"""Linux NFLOG (link type 239): the packets a firewall rule logged (`iptables -j
NFLOG`, `nft log group`), as dumpcap captures them from `nflog:GROUP`.

A 4-byte header (address family, version, group in network order), then TLVs
whose length and type are in the logging host's byte order (told apart by the
type, always below 256). The packet is the payload TLV; the rule's prefix TLV
and the group name the rule that logged it: `labels` gives them, so flows can
carry them as their interface.
"""

from __future__ import annotations

import numpy as np

from portmatrix.decode import batch as b
from portmatrix.decode.ethertype import IPV4, IPV6
from portmatrix.decode.fields import be16, u8, uint

NFLOG = 239
PAYLOAD, PREFIX = 9, 10  # TLV types
AF_INET, AF_INET6 = 2, 10
MAX_TLVS = 32
MAX_PREFIX = 64  # bytes of a prefix kept (iptables allows 64)


def _walk(data, pos, end):
    """Per frame: (payload start, payload end, prefix start, prefix length); -1 absent."""
    n = len(pos)
    payload, payload_end = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    prefix, prefix_len = np.full(n, -1, np.int64), np.zeros(n, np.int64)
    at = pos + 4
    little = uint(data, at + 2, 2, little=True) < 0x100
    live = np.flatnonzero(at + 4 <= end)
    for _ in range(MAX_TLVS):
        if not len(live):
            break
        a, le = at[live], little[live]
        length = np.where(le, uint(data, a, 2, little=True), be16(data, a))
        kind = np.where(le, uint(data, a + 2, 2, little=True), be16(data, a + 2))
        ok = (length >= 4) & (a + length <= end[live])
        live, a, length, kind = live[ok], a[ok], length[ok], kind[ok]
        got = kind == PAYLOAD
        payload[live[got]], payload_end[live[got]] = a[got] + 4, a[got] + length[got]
        got = kind == PREFIX
        prefix[live[got]], prefix_len[live[got]] = a[got] + 4, length[got] - 4
        at[live] = a + ((length + 3) & ~3)
        live = live[at[live] + 4 <= end[live]]
    return payload, payload_end, prefix, prefix_len


def nflog(data, pos, end, status):
    """The logged packet: its start and, from the address family, IPv4 or IPv6."""
    status[pos + 4 > end] = b.TRUNC_LINK
    family = u8(data, pos)
    payload, _, _, _ = _walk(data, pos, end)
    etype = np.where(family == AF_INET, IPV4, np.where(family == AF_INET6, IPV6, b.NFLOG_OTHER))
    etype[payload < 0] = b.NFLOG_OTHER
    return np.where(payload < 0, pos, payload), etype.astype(np.int64)


def labels(data, pos, end) -> tuple[np.ndarray, list[str]]:
    """Which logging rule each NFLOG frame came from: (index into the names, names),
    a name being "nflog:GROUP PREFIX". Only the distinct names are made in Python."""
    group = be16(data, pos + 2) * (pos + 4 <= end)
    _, _, prefix, length = _walk(data, pos, end)
    length = np.clip(length, 0, MAX_PREFIX)
    width = int(length.max()) if len(length) else 0  # prefixes are short: no wider
    if not len(data):
        data = np.zeros(1, np.uint8)
    grid = np.minimum(prefix[:, None] + np.arange(width), len(data) - 1)
    text = np.where(np.arange(width) < length[:, None], data[grid], 0).astype(np.uint8)
    key = np.concatenate([group[:, None].astype(np.uint8), (group >> 8)[:, None], text], axis=1)
    key = key.astype(np.uint8)
    distinct, index = np.unique(key, axis=0, return_inverse=True)
    names = []
    for row in distinct:
        g = int(row[0]) | int(row[1]) << 8
        words = bytes(row[2:]).split(b"\0", 1)[0].decode("utf-8", "replace").strip()
        names.append(f"nflog:{g} {words}".strip())
    return index.reshape(-1), names
