"""The ClientHello reader: server name, ALPN and version of hellos built from
RFC 8446; cut short anywhere, damaged, or random, it never raises."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from portmatrix.decode import tls
from support import apps


def test_reads_server_name_alpn_and_version():
    hello = tls.from_records(apps.tls_record(apps.client_hello("Admin.Example.COM.")))
    assert hello == tls.Hello(tls.OK, "admin.example.com", ["h2", "http/1.1"], "1.3")


def test_without_supported_versions_the_legacy_version_stands():
    hello = tls.client_hello(apps.client_hello("a.example", (), versions=()))
    assert (hello.status, hello.version, hello.alpn) == (tls.OK, "1.2", [])


def test_a_hello_without_a_name():
    hello = tls.from_records(apps.tls_record(apps.client_hello(None)))
    assert hello.status == tls.OK and hello.sni is None


def test_a_hello_over_two_records_is_joined():
    message = apps.client_hello("split.example", pad=300)
    records = apps.tls_record(message[:100]) + apps.tls_record(message[100:])
    assert tls.from_records(records).sni == "split.example"


def test_cut_short_anywhere_it_gives_what_came_before():
    record = apps.tls_record(apps.client_hello("cut.example", pad=64))
    name_end = record.index(b"cut.example") + len(b"cut.example")
    for n in range(len(record)):
        hello = tls.from_records(record[:n])
        assert hello.status in (tls.CUT, tls.DAMAGED) if n < 6 else hello.status == tls.CUT
        assert hello.sni == ("cut.example" if n >= name_end else None)
    assert tls.from_records(record).status == tls.OK


def test_lengths_that_cannot_be_right_are_damage():
    message = bytearray(apps.client_hello("bad.example"))
    # The extensions' total length claims more than the hello holds.
    ext_len_at = 4 + 2 + 32 + 1 + 32 + 2 + 6 + 2
    message[ext_len_at : ext_len_at + 2] = struct.pack(">H", 0xFFF0)
    assert tls.client_hello(bytes(message)).status == tls.DAMAGED
    # A session id longer than 32 bytes.
    message = bytearray(apps.client_hello("bad.example"))
    message[4 + 2 + 32] = 33
    assert tls.client_hello(bytes(message)).status == tls.DAMAGED
    # Not a handshake record at all.
    assert tls.from_records(b"\x17\x03\x03\x00\x05hello").status == tls.DAMAGED


def test_names_that_are_no_hostnames_are_dropped():
    for raw in (b"", b"a b", b"x" * 300, b"a..b", b"caf\xc3\xa9.example", b"*.example"):
        assert tls.hostname(raw) is None, raw
    assert tls.hostname(b"s3.us-west-1.amazonaws.com.") == "s3.us-west-1.amazonaws.com"


def test_is_record_start():
    assert tls.is_record_start(apps.tls_record(apps.client_hello())[:6])
    assert not tls.is_record_start(b"\x16\x03\x03\x00\x10\x02")  # a ServerHello
    assert not tls.is_record_start(b"GET / ")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data):
    for payload in (data, b"\x16\x03\x01" + data, b"\x16\x03\x01\x01\x00\x01" + data):
        assert tls.from_records(payload).status in (tls.OK, tls.CUT, tls.DAMAGED)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 400), st.integers(0, 255))
def test_one_damaged_byte_never_raises(at, value):
    record = bytearray(apps.tls_record(apps.client_hello("flip.example")))
    record[at % len(record)] = value
    hello = tls.from_records(bytes(record))
    assert hello.sni in (None, "flip.example") or hello.status == tls.OK
