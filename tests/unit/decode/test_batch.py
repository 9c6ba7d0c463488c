"""The batches decoding reads and writes: raw frames share their chunk, packet rows
keep equal-length columns through take and concat, and every frame lands in one
decode bucket."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
from scapy.layers.inet import UDP

from portmatrix.decode import batch as b
from portmatrix.decode.batch import DecodeCounts, PacketBatch
from portmatrix.testing.captures import decode_packets, ether, ip, raw_batch


def udp(n: int) -> list:
    return [ether(ip("10.0.0.1", "10.0.0.2") / UDP(sport=1000 + i, dport=53)) for i in range(n)]


def test_raw_take_shares_the_chunk():
    raw = raw_batch(udp(5))
    some = raw.take(np.array([4, 1]))
    assert some.data is raw.data
    assert some.frame.tolist() == [5, 2]
    assert some.offset.tolist() == raw.offset[[4, 1]].tolist()
    for name in ("caplen", "wirelen", "ts", "linktype", "iface", "file_offset"):
        assert getattr(some, name).tolist() == getattr(raw, name)[[4, 1]].tolist(), name
    assert len(some) == 2 and len(raw.take(np.zeros(5, bool))) == 0


def test_packet_rows_take_and_concat_every_column():
    rows, _ = decode_packets(udp(4))
    firsts, lasts = rows.take(np.array([0, 1])), rows.take(np.array([2, 3]))
    joined = firsts.concat(lasts)
    for f in fields(PacketBatch):
        column = getattr(joined, f.name)
        assert column.dtype == getattr(rows, f.name).dtype, f.name
        assert column.tolist() == getattr(rows, f.name).tolist(), f.name
    assert rows.take(rows.sport >= 1002).sport.tolist() == [1002, 1003]


def test_empty_packet_rows_have_the_columns_types():
    empty = PacketBatch.empty()
    rows, _ = decode_packets(udp(1))
    assert len(empty) == 0 and empty.located is None
    for f in fields(PacketBatch):
        if f.name == "located":
            continue
        got, real = getattr(empty, f.name).dtype, getattr(rows, f.name).dtype
        # Unsigned columns (addresses, small codes) keep their type; the rest are wide
        # enough for any value of theirs.
        assert got == real or (got == np.int64 and np.can_cast(real, got)), f.name
    assert len(empty.concat(rows)) == 1


def test_rows_without_payload_positions_join_as_not_located():
    """Rows of the numpy decoder (no `located`) joined to the compiled decoder's: the
    former are marked not located, and the latter keep theirs."""
    fast, _ = decode_packets(udp(2))
    if fast.located is None:
        pytest.skip("built without the compiled decoder")
    plain = fast.take(np.array([0]))
    plain.located = None
    joined = plain.concat(fast)
    assert joined.located[:, 0].tolist() == [-1, *fast.located[:, 0].tolist()]
    assert joined.located[1:].tolist() == fast.located.tolist()


def test_decode_counts_add_and_check():
    one = DecodeCounts(frames=3, ip=1, non_ip={0x0806: 1}, undecodable={"x": 1}, l4_truncated=1)
    two = DecodeCounts(frames=2, ip=1, unsupported={105: 1}, undecodable={"x": 0, "y": 0})
    one.add(two)
    one.check()
    assert (one.frames, one.ip, one.l4_truncated) == (5, 2, 1)
    assert one.non_ip == {0x0806: 1} and one.unsupported == {105: 1}
    assert one.undecodable == {"x": 1, "y": 0}
    one.frames += 1
    with pytest.raises(RuntimeError, match="add up to 5, not 6"):
        one.check()


def test_counts_made_without_buckets_get_their_own():
    one, two = DecodeCounts(), DecodeCounts()
    one.non_ip[1] = 1
    assert two.non_ip == {}  # no dict shared between instances


def test_every_undecodable_status_has_a_reason_of_its_own():
    # Undecodable statuses are the codes from 10 up (the MAX_ depth limits are not
    # statuses); reports print their reasons.
    codes = {
        v
        for k, v in vars(b).items()
        if k.isupper() and not k.startswith("MAX_") and isinstance(v, int) and v >= 10
    }
    assert codes == set(b.UNDECODABLE)
    assert len(set(b.UNDECODABLE.values())) == len(b.UNDECODABLE)
    assert {b.IP, b.NON_IP, b.UNSUPPORTED_LINK}.isdisjoint(b.UNDECODABLE)
