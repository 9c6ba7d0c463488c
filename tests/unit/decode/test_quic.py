"""QUIC Initials: the keys RFC 9001 and RFC 9369 give for their example
connection, and server names read from Initials that the `cryptography`
package encrypted (an AES-GCM independent of ours), whole, split over several
packets, out of order, cut, damaged or random."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from portmatrix.decode import quic, tls
from support import apps

DCID = bytes.fromhex("8394c8f03e515708")  # RFC 9001, appendix A


def test_rfc_9001_client_initial_keys():
    keys = quic.client_keys(DCID)
    assert keys.key.hex() == "1f369613dd76d5467730efcbe3b1a22d"
    assert keys.iv.hex() == "fa044b2f42a3fd3b46fb255c"
    assert keys.hp.hex() == "9f50449e04a0e810283a1e9933adedd2"


def test_rfc_9369_v2_client_initial_keys():
    keys = quic.client_keys(DCID, quic.V2)
    assert keys.key.hex() == "8b1a0bc121284290a29e0971b5cd045d"
    assert keys.iv.hex() == "91f73e2351d8fa91660e909f"
    assert keys.hp.hex() == "45b95e15235d6f45a6b19cbcb0294ba9"


def test_reads_the_server_name_of_v1_and_v2_initials():
    hello = apps.client_hello("quic.example.com", ("h3",))
    for version in (quic.V1, quic.V2):
        packet = apps.quic_initial(hello, version=version)
        assert quic.is_initial_start(packet[:8])
        found = quic.initials([("conn", packet)])
        assert found == {0: tls.Hello(tls.OK, "quic.example.com", ["h3"], "1.3")}


def test_a_hello_over_two_initials_in_any_order():
    hello = apps.client_hello("split.example", ("h3",), pad=900)
    first = apps.quic_initial(hello[:700], pn=0)
    second = apps.quic_initial(hello[700:], pn=1, offset=700)
    for packets in ([first, second], [second, first]):
        found = quic.initials([("conn", p) for p in packets])
        assert list(found) == [0]  # one connection: its hello, at its first packet
        assert found[0].sni == "split.example" and found[0].status == tls.OK


def test_connections_are_read_apart():
    a = apps.quic_initial(apps.client_hello("a.example"), dcid=b"\x01" * 8)
    b = apps.quic_initial(apps.client_hello("b.example"), dcid=b"\x02" * 8)
    found = quic.initials([("one", a), ("two", b)])
    assert [found[0].sni, found[1].sni] == ["a.example", "b.example"]


def test_missing_start_is_cut_and_garbage_is_damaged():
    hello = apps.client_hello("late.example", pad=900)
    later = apps.quic_initial(hello[700:], offset=700)
    assert quic.initials([("c", later)])[0].status == tls.CUT
    packet = bytearray(apps.quic_initial(hello))
    packet[40:60] = bytes(20)  # the start of the encrypted frames: no frames any more
    assert quic.initials([("c", bytes(packet))])[0].status == tls.DAMAGED
    assert quic.initials([("c", b"\xc0\x00\x00\x00\x01\x08")])[0].status == tls.DAMAGED


def test_not_an_initial():
    assert not quic.is_initial_start(b"\x40\x00\x00\x00\x01\x08")  # a short header
    assert not quic.is_initial_start(b"\xe0\x00\x00\x00\x01\x08")  # a Handshake packet
    assert not quic.is_initial_start(b"\xc0\x00\x00\x00\x02\x08")  # an unknown version


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1300))
def test_random_datagrams_never_raise(data):
    for payload in (data, b"\xc3\x00\x00\x00\x01\x08" + DCID + data):
        found = quic.initials([("c", payload)])
        assert set(found) == {0}


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 1199), st.integers(0, 255))
def test_one_damaged_byte_never_raises(at, value):
    packet = bytearray(apps.quic_initial(apps.client_hello("flip.example")))
    packet[at] = value
    hello = quic.initials([("c", bytes(packet))])[0]
    assert hello.status in (tls.OK, tls.CUT, tls.DAMAGED)
