"""NFLOG: either byte order, records without a packet, and the logging rule
as the interface (made once per rule)."""

from __future__ import annotations

import struct

import numpy as np

from portmatrix.decode import batch as b
from portmatrix.decode import decode, nflog
from portmatrix.sources.base import CaptureInfo
from portmatrix.testing.captures import raw_batch
from support import encapsulated as enc
from support.decoders import V4, decoded


def test_nflog_big_endian_tlvs_and_records_without_a_packet():
    be = struct.pack(">BBH", 2, 0, 3) + struct.pack(">HH", 4 + len(V4), 9) + bytes(V4)
    no_payload = struct.pack(">BBH", 2, 0, 3) + struct.pack("<HH", 8, 10) + b"abc\0"
    arp_family = enc.nflog(V4)[:0] + struct.pack(">BBH", 7, 0, 3) + enc.nflog(V4)[4:]
    rows, counts = decoded([be, no_payload, arp_family, b"\x02\x00"], 239)
    assert [r["dport"] for r in rows] == [53]
    assert counts.non_ip == {b.NFLOG_OTHER: 2}
    assert counts.undecodable == {"link header cut short": 1}


def test_nflog_labels_are_made_once_per_rule():
    frames = [enc.nflog(V4, 5, b"A"), enc.nflog(V4, 5, b"B"), enc.nflog(V4, 5, b"A")]
    frames += [enc.nflog(V4, 300, b"")]
    raw = raw_batch(frames, 239)
    index, names = nflog.labels(raw.data, raw.offset, raw.offset + raw.caplen)
    assert [names[i] for i in index] == ["nflog:5 A", "nflog:5 B", "nflog:5 A", "nflog:300"]
    info = CaptureInfo(path="x")
    rows, _ = decode(raw, label=info.label)
    assert [i.name for i in info.interfaces] == names  # each rule once
    assert [names[i] for i in rows.iface] == [names[i] for i in index]
    again, _ = decode(raw, label=info.label)  # the next batch reuses them
    assert len(info.interfaces) == 3 and np.array_equal(again.iface, rows.iface)
