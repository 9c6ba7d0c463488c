"""Payload signatures: each protocol of the test set recognised from its first
bytes, with its details; random bytes and damaged messages are no match and
never raise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portmatrix.apps.signatures import SIGNATURES, Sample, identify
from support import apps


def sample_of(case) -> Sample:
    client = b"".join(d for side, d in case.messages if side == apps.CLIENT)
    server = b"".join(d for side, d in case.messages if side == apps.SERVER)
    return Sample(case.proto, client, server)


@pytest.mark.parametrize("case", apps.CASES, ids=lambda c: c.label)
def test_each_protocol_is_recognised(case):
    assert identify(sample_of(case))[0] == case.label


def test_every_signature_has_a_case_or_a_test():
    tested = {c.label for c in apps.CASES} | {"http2", "vnc", "telnet", "quic", "gquic"}
    tested |= {"dns", "dhcp", "wireguard", "ntp"}
    assert set(SIGNATURES) == tested


@pytest.mark.parametrize(
    ("label", "details"),
    [
        ("ssh", {"server": "OpenSSH_9.2p1"}),
        ("tls", {"sni": "admin.example.com", "alpn": "h2,http/1.1", "version": "1.3"}),
        ("http", {"method": "GET", "host": "console.example.com", "user_agent": "curl/8.4.0"}),
        ("rdp", {"cookie": "administrator"}),
        ("postgresql", {"user": "postgres"}),
        ("redis", {"command": "AUTH"}),
        ("irc", {"nick": "bot1234"}),
        ("mysql", {"server": "8.0.36"}),
    ],
)
def test_details(label, details):
    assert identify(sample_of(apps.BY_LABEL[label])) == (label, details)


def test_more_protocols():
    assert identify(Sample("tcp", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))[0] == "http2"
    assert identify(Sample("tcp", b"", b"RFB 003.008\n")) == ("vnc", {"version": "003.008"})
    assert identify(Sample("tcp", b"", b"\xff\xfd\x18\xff\xfd\x20"))[0] == "telnet"
    quic = apps.quic_initial(apps.client_hello("q.example", ("h3",)))
    assert identify(Sample("udp", quic)) == ("quic", {"sni": "q.example"})
    gquic = b"\x0d" + bytes(8) + b"Q043" + bytes(40)
    assert identify(Sample("udp", gquic)) == ("gquic", {"version": "Q043"})
    query = (
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
    )
    assert identify(Sample("udp", query)) == ("dns", {"query": "example.com"})
    dhcp = b"\x01\x01\x06\x00" + bytes(232) + b"\x63\x82\x53\x63\x35\x01\x01\xff"
    assert identify(Sample("udp", dhcp))[0] == "dhcp"
    assert identify(Sample("udp", b"\x01\x00\x00\x00" + bytes(144)))[0] == "wireguard"
    ntp = bytes([0x23]) + bytes(47)
    assert identify(Sample("udp", ntp, bytes([0x24]) + bytes(47))) == ("ntp", {"version": "4"})


def test_a_session_under_way_is_still_tls():
    record = b"\x17\x03\x03\x00\x20" + bytes(32)  # application data, no handshake seen
    assert identify(Sample("tcp", record)) == ("tls", {})


def test_the_port_names_nothing():
    assert identify(sample_of(apps.UNIDENTIFIED_CASE)) is None
    assert identify(Sample("tcp")) is None
    # Look-alikes: a 220 greeting alone, a bare RESP reply, USER without IRC's form.
    assert identify(Sample("tcp", b"", b"220 ready\r\n")) is None
    assert identify(Sample("tcp", b"", b"+OK\r\n")) is None
    assert identify(Sample("tcp", b"USER bob\r\n")) is None


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["tcp", "udp"]), st.binary(max_size=300), st.binary(max_size=300))
def test_random_payloads_never_raise(proto, client, server):
    found = identify(Sample(proto, client, server))
    assert found is None or found[0] in SIGNATURES


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(apps.CASES), st.integers(0, 10_000), st.integers(0, 255))
def test_damaged_first_messages_never_raise(case, at, value):
    sample = sample_of(case)
    data = bytearray(sample.client or sample.server)
    data[at % len(data)] = value
    identify(Sample(case.proto, bytes(data), sample.server))
