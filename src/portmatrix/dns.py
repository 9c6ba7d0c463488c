"""Hostnames learned from the DNS answers in a capture.

A matrix may name a destination by hostname (a vendor's API or S3 endpoint)
whose addresses are large, changing cloud pools. The clients' own lookups say
which addresses those names had when the traffic happened: each DNS response
(UDP, source port 53) maps its question's name, and every CNAME on the way,
to the A and AAAA records the chain ends in. Only the few response packets are
parsed, by the small reader here (no scapy: importing it costs more than all
the answers of a large capture).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from portmatrix.addresses import V4_MAPPED
from portmatrix.decode import ip, link
from portmatrix.decode.batch import PACKET, PacketBatch
from portmatrix.decode.transport import UDP
from portmatrix.sources.base import RawBatch

DNS_PORT = 53
A, CNAME, AAAA = 1, 5, 28
MAX_RECORDS = 256  # per section: more is a damaged count, not a real answer


def learn(raw: RawBatch, rows: PacketBatch) -> dict[str, set[int]]:
    """Names -> addresses from the DNS responses among these decoded rows."""
    names: dict[str, set[int]] = {}
    for _, message in responses(raw, rows):
        for name, addrs in answers(message).items():
            names.setdefault(name, set()).update(addrs)
    return names


def responses(raw: RawBatch, rows: PacketBatch) -> Iterator[tuple[int, bytes]]:
    """(frame, UDP payload) of each DNS response among the rows (outside tunnels,
    not fragmented)."""
    sel = np.flatnonzero(
        (rows.proto == UDP)
        & (rows.sport == DNS_PORT)
        & (rows.kind == PACKET)
        & (rows.encap == 0)
        & (rows.frag == 0)
    )
    if not len(sel):
        return
    idx = np.searchsorted(raw.frame, rows.frame[sel])
    # Where each response's payload is: the outer headers again, for these few frames.
    data, offset, caplen = raw.data, raw.offset[idx], raw.caplen[idx]
    l3pos, kind, *_ = link.decode(data, offset, caplen, raw.linktype[idx])
    net = ip.network(data, l3pos, offset + caplen, kind.astype(np.int64))
    for frame, start, stop in zip(
        raw.frame[idx].tolist(), (net.l4pos + 8).tolist(), net.l4end.tolist(), strict=True
    ):
        yield frame, data[start:stop].tobytes()


def answers(message: bytes) -> dict[str, set[int]]:
    """Name -> addresses of one DNS response; {} for anything else or damaged."""
    try:
        return _answers(message)
    except (IndexError, ValueError):
        return {}


def _answers(msg: bytes) -> dict[str, set[int]]:
    if len(msg) < 12 or not msg[2] & 0x80 or msg[3] & 0x0F:  # a response, without error
        return {}
    qd, an = int.from_bytes(msg[4:6], "big"), int.from_bytes(msg[6:8], "big")
    if qd > MAX_RECORDS or an > MAX_RECORDS:
        return {}
    pos, questions = 12, []
    for _ in range(qd):
        name, pos = _name(msg, pos)
        questions.append(name)
        pos += 4
    alias: dict[str, str] = {}  # CNAME: name -> canonical name
    addrs: dict[str, set[int]] = {}
    for _ in range(an):
        owner, pos = _name(msg, pos)
        rtype = int.from_bytes(msg[pos : pos + 2], "big")
        size = int.from_bytes(msg[pos + 8 : pos + 10], "big")
        rdata, pos = pos + 10, pos + 10 + size
        if pos > len(msg):
            raise ValueError("record runs past the message")
        if rtype == A and size == 4:
            addrs.setdefault(owner, set()).add(V4_MAPPED | int.from_bytes(msg[rdata:pos], "big"))
        elif rtype == AAAA and size == 16:
            addrs.setdefault(owner, set()).add(int.from_bytes(msg[rdata:pos], "big"))
        elif rtype == CNAME:
            alias[owner] = _name(msg, rdata)[0]
    out: dict[str, set[int]] = {}
    for name in {*questions, *alias, *addrs}:
        seen, at = {name}, name
        while at in alias and alias[at] not in seen:  # follow the chain, never a loop
            at = alias[at]
            seen.add(at)
        if at in addrs:
            out[name] = addrs[at]
    return out


def _name(msg: bytes, pos: int) -> tuple[str, int]:
    """A domain name at `pos` (compression pointers followed) and where it ends."""
    labels, end, jumps = [], None, 0
    while True:
        size = msg[pos]
        if size >= 0xC0:  # a pointer to an earlier name
            jumps += 1
            if jumps > 32:
                raise ValueError("compression pointer loop")
            if end is None:
                end = pos + 2
            pos = ((size & 0x3F) << 8) | msg[pos + 1]
            continue
        if size > 63:
            raise ValueError("bad label length")
        pos += 1
        if size == 0:
            break
        labels.append(msg[pos : pos + size].decode("ascii", "replace").lower())
        pos += size
    return ".".join(labels), pos if end is None else end
