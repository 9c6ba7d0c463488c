"""Hostnames learned from the DNS answers in a capture.

A matrix may name a destination by hostname (a vendor's API or S3 endpoint)
whose addresses are large, changing cloud pools. The clients' own lookups say
which addresses those names had when the traffic happened: each DNS response
(UDP, source port 53) maps its question's name, and every CNAME on the way,
to the Internet-class A and AAAA records the chain ends in; records about other
names are ignored. Only the few response packets are parsed, by the small
reader here (no scapy: importing it costs more than all the answers of a large
capture). Who answered is not checked: a forged answer in the capture would be
believed, which is why reports list every name resolved this way.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from portmatrix.addresses import V4_MAPPED
from portmatrix.decode.batch import PACKET, PacketBatch, RawBatch
from portmatrix.decode.payload import payloads
from portmatrix.decode.transport import TCP, UDP

DNS_PORT = 53
A, CNAME, AAAA = 1, 5, 28
IN = 1  # the Internet class (others, such as CHAOS, name no addresses)
PSH = 0x08
MAX_RECORDS = 256  # answers: more is a damaged count, not a real answer
MAX_NAME = 255  # bytes of a name on the wire (RFC 1035)


def learn(raw: RawBatch, rows: PacketBatch, wanted: frozenset[str]) -> dict[str, set[int]]:
    """The `wanted` hostnames (those roles name) -> the addresses the DNS responses
    among these decoded rows gave them. Only those are kept: a capture may hold
    answers for hundreds of thousands of names."""
    names: dict[str, set[int]] = {}
    if not wanted:
        return names
    for _, message in responses(raw, rows):
        for name, addrs in answers(message).items():
            if name in wanted:
                names.setdefault(name, set()).update(addrs)
    return names


def _from_port_53(rows: PacketBatch) -> np.ndarray:
    """Indices of the packets sent from port 53: one pass over the batch, the rest
    of the tests on these few."""
    sel = np.flatnonzero(rows.sport == DNS_PORT)
    return sel[rows.kind[sel] == PACKET]


def responses(raw: RawBatch, rows: PacketBatch) -> Iterator[tuple[int, bytes]]:
    """(frame, UDP payload) of each DNS response among the rows (outside tunnels,
    not fragmented)."""
    sel = _from_port_53(rows)
    sel = sel[(rows.proto[sel] == UDP) & (rows.encap[sel] == 0) & (rows.frag[sel] == 0)]
    if not len(sel):
        return
    found = payloads(raw, rows, sel)
    for k, frame in enumerate(rows.frame[sel].tolist()):
        yield frame, found.bytes_of(k)


def unread(rows: PacketBatch) -> int:
    """DNS responses `responses` leaves out: over TCP (segments with data pushed),
    inside tunnels, or fragmented."""
    sel = _from_port_53(rows)
    proto = rows.proto[sel]
    tcp = (proto == TCP) & ((rows.tcp_flags[sel] & PSH) != 0)
    other = (proto == UDP) & ((rows.encap[sel] != 0) | (rows.frag[sel] != 0))
    return int((tcp | other).sum())


def answers(message: bytes) -> dict[str, set[int]]:
    """Name -> addresses of one DNS response: the question's name and each CNAME
    of its chain; {} for anything else or damaged."""
    try:
        return _answers(message)
    except (IndexError, ValueError):
        return {}


def question(msg: bytes) -> str | None:
    """The name a DNS message asks about (its one question), None when it has no
    whole question (application labels: a query is DNS whatever its port)."""
    try:
        name, end = _Names(msg).read(12)
    except (IndexError, ValueError):
        return None
    return name if name and end + 4 <= len(msg) else None


def _answers(msg: bytes) -> dict[str, set[int]]:
    if len(msg) < 12 or not msg[2] & 0x80 or msg[3] & 0x0F:  # a response, without error
        return {}
    qd, an = int.from_bytes(msg[4:6], "big"), int.from_bytes(msg[6:8], "big")
    if qd != 1 or an > MAX_RECORDS:  # servers answer one question per message
        return {}
    names = _Names(msg)
    question, pos = names.read(12)
    pos += 4
    alias: dict[str, str] = {}  # CNAME: name -> canonical name
    addrs: dict[str, set[int]] = {}
    for _ in range(an):
        owner, pos = names.read(pos)
        rtype = int.from_bytes(msg[pos : pos + 2], "big")
        rclass = int.from_bytes(msg[pos + 2 : pos + 4], "big")
        size = int.from_bytes(msg[pos + 8 : pos + 10], "big")
        rdata, pos = pos + 10, pos + 10 + size
        if pos > len(msg):
            raise ValueError("record runs past the message")
        if rclass != IN:
            continue
        if rtype == A and size == 4:
            addrs.setdefault(owner, set()).add(V4_MAPPED | int.from_bytes(msg[rdata:pos], "big"))
        elif rtype == AAAA and size == 16:
            addrs.setdefault(owner, set()).add(int.from_bytes(msg[rdata:pos], "big"))
        elif rtype == CNAME:
            alias[owner] = names.read(rdata)[0]
    # Only the question's chain: records about other names answer nothing asked.
    chain = [question]
    while chain[-1] in alias and alias[chain[-1]] not in chain:  # never round a loop
        chain.append(alias[chain[-1]])
    found = addrs.get(chain[-1])
    return dict.fromkeys(chain, found) if found else {}


MAX_POINTERS = 2 * MAX_RECORDS + 16  # compression pointers followed in one message


class _Names:
    """The domain names of one message, with the work bounded whatever it holds.

    Compression pointers must point backwards (so they cannot loop), each offset's
    name is decoded once (a crafted message makes every record's name a long
    chain of pointers into the same labels), and a message may make at most
    MAX_POINTERS jumps in all; past that it is damaged and teaches nothing."""

    def __init__(self, msg: bytes) -> None:
        self.msg = msg
        self.known: dict[int, str] = {}  # offset -> the name that starts there
        self.jumps = 0

    def read(self, pos: int) -> tuple[str, int]:
        """The name at `pos` and where it ends (after its pointer, if any)."""
        msg, start = self.msg, pos
        labels: list[tuple[int, str]] = []  # (offset, label) read here, in order
        end, rest, length = None, "", 0
        while True:
            if pos in self.known:
                rest = self.known[pos]
                length += len(rest) + 2 if rest else 1  # its bytes on the wire
                if length > MAX_NAME:
                    raise ValueError("name too long")
                if end is None:  # a name met before, read again from its start
                    end = self._end(pos)
                break
            size = msg[pos]
            if size >= 0xC0:  # a pointer to an earlier name
                self.jumps += 1
                target = ((size & 0x3F) << 8) | msg[pos + 1]
                if self.jumps > MAX_POINTERS or target >= pos:
                    raise ValueError("compression pointer loop, or too many pointers")
                if end is None:
                    end = pos + 2
                pos = target
                continue
            if size > 63:
                raise ValueError("bad label length")
            length += size + 1
            if length > MAX_NAME:  # longer than DNS allows: a crafted message
                raise ValueError("name too long")
            if size == 0:
                end = pos + 1 if end is None else end
                break
            label = msg[pos + 1 : pos + 1 + size]
            if len(label) < size or b"." in label:
                raise ValueError("label cut short, or holding a dot")
            labels.append((pos, label.decode("ascii", "replace").lower()))
            pos += 1 + size
        for offset, label in reversed(labels):  # every suffix read is a name of its own
            rest = f"{label}.{rest}" if rest else label
            self.known[offset] = rest
        self.known.setdefault(start, rest)
        return rest, end

    def _end(self, pos: int) -> int:
        """Where the name starting at `pos` ends in the message (its labels, then a
        pointer or the root label), read again without decoding the labels."""
        msg = self.msg
        while msg[pos] and msg[pos] < 0xC0:
            pos += 1 + msg[pos]
        return pos + (2 if msg[pos] else 1)
