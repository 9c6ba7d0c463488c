"""The decoder's two paths compared: the compiled fast path for common frames
must give exactly what the numpy reference gives."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
from scapy.layers.inet import TCP, UDP

from portmatrix.decode import decode, payload
from portmatrix.decode.batch import PacketBatch
from portmatrix.testing.captures import decode_packets, ip, packet_rows


def assert_same(raw) -> None:
    """Both decoders give the same rows and buckets, and both ways of finding the
    readable rows' payloads (the compiled `locate`, numpy's gathers) the same
    positions and first bytes."""
    fast, fast_counts = decode(raw)
    ref, ref_counts = decode(raw, fast=False)
    for f in fields(PacketBatch):
        if f.name == "located":  # the compiled decoder's alone: compared below
            continue
        a, b = getattr(fast, f.name), getattr(ref, f.name)
        assert a.dtype == b.dtype, f.name
        np.testing.assert_array_equal(a, b, err_msg=f.name)
    assert fast_counts == ref_counts
    chosen = np.flatnonzero(payload.readable(ref))
    located = payload.payloads(raw, fast, chosen)
    gathered = payload.payloads(raw, ref, chosen, compiled=False)
    for name in ("start", "stop", "transport"):
        a, b = getattr(located, name), getattr(gathered, name)
        np.testing.assert_array_equal(a, b, err_msg=name)
    np.testing.assert_array_equal(located.head(), gathered.head(), err_msg="head")


# Frames and checks the decoder tests share -----------------------------------

V4 = ip("192.0.2.1", "198.51.100.2") / UDP(sport=5353, dport=53) / b"query"
V6 = ip("2001:db8::1", "2001:db8::2") / TCP(sport=40000, dport=443, flags="S")


def decoded(frames, linktype=1):
    """(rows as dicts, counts) of frames decoded, its counts checked for balance."""
    rows, counts = decode_packets(frames, linktype)
    counts.check()
    return packet_rows(rows), counts


def assert_v4(row):
    assert (row["src"], row["dst"], row["proto"], row["sport"], row["dport"]) == (
        "192.0.2.1",
        "198.51.100.2",
        17,
        5353,
        53,
    )


def assert_v6(row):
    assert (row["src"], row["dst"], row["proto"], row["sport"], row["dport"]) == (
        "2001:db8::1",
        "2001:db8::2",
        6,
        40000,
        443,
    )
    assert row["tcp_flags"] == 0x02
