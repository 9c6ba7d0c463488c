"""Hostnames learned from DNS answers: the message reader on built responses
(records, CNAME chains, compression, damage), learning from decoded batches, the
names reaching the role map. tshark's reading of real captures as the oracle:
tests/conformance/test_tshark_dns.py."""

from __future__ import annotations

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import UDP

from portmatrix.addresses import to_int
from portmatrix.decode import decode, dns
from portmatrix.testing.captures import ether, ip, raw_batch


def addr(text: str) -> int:
    import ipaddress

    return to_int(ipaddress.ip_address(text))


def response(qname: str, *records, rcode: int = 0) -> bytes:
    return bytes(DNS(id=1, qr=1, rcode=rcode, qd=[DNSQR(qname=qname)], an=list(records)))


def test_a_and_aaaa_records_of_the_question():
    msg = response(
        "api.example.com",
        DNSRR(rrname="api.example.com", type="A", rdata="192.0.2.7"),
        DNSRR(rrname="api.example.com", type="AAAA", rdata="2001:db8::7"),
    )
    assert dns.answers(msg) == {"api.example.com": {addr("192.0.2.7"), addr("2001:db8::7")}}


def test_a_cname_chain_maps_every_name_on_it():
    msg = response(
        "www.example.com",
        DNSRR(rrname="www.example.com", type="CNAME", rdata="edge.example.net"),
        DNSRR(rrname="edge.example.net", type="CNAME", rdata="pool.cdn.example"),
        DNSRR(rrname="pool.cdn.example", type="A", rdata="198.51.100.1"),
        DNSRR(rrname="pool.cdn.example", type="A", rdata="198.51.100.2"),
    )
    both = {addr("198.51.100.1"), addr("198.51.100.2")}
    assert dns.answers(msg) == dict.fromkeys(
        ["www.example.com", "edge.example.net", "pool.cdn.example"], both
    )


def test_compressed_names_and_case():
    # Question at 12; the answer's owner is a pointer to it (0xC00C).
    msg = bytearray(b"\x00\x01\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00")
    msg += b"\x03API\x07Example\x03com\x00\x00\x01\x00\x01"
    msg += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x09"
    assert dns.answers(bytes(msg)) == {"api.example.com": {addr("192.0.2.9")}}


def test_only_the_questions_chain_in_the_internet_class():
    msg = response(
        "asked.example",
        DNSRR(rrname="asked.example", type="A", rdata="192.0.2.1"),
        DNSRR(rrname="unasked.example", type="A", rdata="192.0.2.66"),  # answers nothing asked
        DNSRR(rrname="asked.example", type="A", rclass=3, rdata="192.0.2.99"),  # CHAOS class
    )
    assert dns.answers(msg) == {"asked.example": {addr("192.0.2.1")}}


def test_a_cname_loop_ends_without_an_answer():
    msg = response(
        "a.example",
        DNSRR(rrname="a.example", type="CNAME", rdata="b.example"),
        DNSRR(rrname="b.example", type="CNAME", rdata="a.example"),
    )
    assert dns.answers(msg) == {}


def long_name_message() -> bytes:
    """A name of 300 bytes (DNS allows 255): what a crafted message would use to make
    every record's owner point at it."""
    head = b"\x00\x01\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
    name = b"\x3f" + b"a" * 63
    question = name * 4 + b"\x2b" + b"b" * 43 + b"\x00" + b"\x00\x01\x00\x01"
    record = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01"
    return head + question + record


@pytest.mark.parametrize(
    "message",
    [
        b"",
        bytes(DNS(id=1, qr=0, qd=[DNSQR(qname="a.example")])),  # a query, not an answer
        response("gone.example", rcode=3),  # NXDOMAIN
        response("a.example", DNSRR(rrname="a.example", type="A", rdata="192.0.2.1"))[:-2],
        b"\x00\x01\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c",  # pointer to itself
        b"\x00\x01\x81\x80\xff\xff\xff\xff\x00\x00\x00\x00",  # absurd counts
        response(
            "gone.example", DNSRR(rrname="gone.example", rdata="192.0.2.1"), rcode=3
        ),  # an error with records anyway
        bytes(
            DNS(
                id=1,
                qr=1,
                qd=[DNSQR(qname="a.example")],
                an=[DNSRR(rrname="a.example", rdata="192.0.2.1")] * 300,
            )
        ),
        response("a.example", DNSRR(rrname="a.example", rdata="192.0.2.1")).replace(
            b"\x01a\x07example", b"\x09a.example"
        ),  # a label holding a dot
        long_name_message(),
    ],
    ids=[
        "empty",
        "query",
        "nxdomain",
        "cut",
        "pointer-loop",
        "counts",
        "error-with-records",
        "300-answers",
        "dotted-label",
        "name-too-long",
    ],
)
def test_anything_else_or_damaged_teaches_nothing(message):
    assert dns.answers(message) == {}


def test_learned_from_decoded_batches_only_from_dns_responses():
    answer = response("s3.example.com", DNSRR(rrname="s3.example.com", rdata="203.0.113.5"))
    packets = [
        ether(ip("10.0.0.53", "10.0.0.1") / UDP(sport=53, dport=40000) / answer, vlans=[7]),
        ether(ip("10.0.0.1", "10.0.0.53") / UDP(sport=40000, dport=53) / answer),  # not from 53
        ether(ip("10.0.0.9", "10.0.0.1") / UDP(sport=5353, dport=5353) / answer),
    ]
    raw = raw_batch(packets)
    rows, _ = decode(raw)
    assert dns.learn(raw, rows, frozenset({"s3.example.com"})) == {
        "s3.example.com": {addr("203.0.113.5")}
    }
    assert dns.learn(raw, rows, frozenset({"other.example"})) == {}  # only names roles use
    assert [frame for frame, _ in dns.responses(raw, rows)] == [1]


def test_responses_in_tunnels_fragments_or_over_tcp_are_counted_not_read():
    from scapy.layers.inet import IP, TCP, fragment
    from scapy.layers.vxlan import VXLAN

    answer = response("s3.example.com", DNSRR(rrname="s3.example.com", rdata="203.0.113.5"))
    udp = ip("10.0.0.53", "10.0.0.1") / UDP(sport=53, dport=40000) / answer
    packets = [
        ether(ip("192.0.2.1", "192.0.2.2") / UDP(sport=1, dport=4789) / VXLAN() / ether(udp)),
        *(ether(f) for f in fragment(IP(bytes(udp)), fragsize=24)),
        ether(ip("10.0.0.53", "10.0.0.1") / TCP(sport=53, dport=40001, flags="PA") / answer),
    ]
    raw = raw_batch(packets)
    rows, _ = decode(raw)
    assert list(dns.responses(raw, rows)) == []
    assert dns.unread(rows) == 3  # the tunnelled one, the first fragment, the TCP one


def test_a_learned_name_gives_its_role_its_addresses(site, tmp_path):
    from portmatrix.check import run_check
    from portmatrix.testing.captures import write_pcap

    by_name = site("by-hostname")  # telemetry.vendor.example: a role known by name only
    answer = response(
        "telemetry.vendor.example", DNSRR(rrname="telemetry.vendor.example", rdata="203.0.113.80")
    )
    from scapy.layers.inet import TCP

    capture = write_pcap(
        tmp_path / "c.pcap",
        [
            ether(ip("10.0.0.53", "10.0.0.1") / UDP(sport=53, dport=40000) / answer),
            ether(ip("10.0.0.1", "203.0.113.80") / TCP(sport=40001, dport=443, flags="S")),
            ether(ip("203.0.113.80", "10.0.0.1") / TCP(sport=443, dport=40001, flags="SA")),
        ],
    )
    result = run_check([str(capture)], [str(by_name.matrix)], str(by_name.inventory))
    https = [f for f in result.findings if f.kind == "flow" and f.port == 443]
    assert https == []  # allowed: the name resolved to the address it went to
    assert any("telemetry.vendor.example → 203.0.113.80" in n for n in result.notices)
    assert result.traffic.captures[0].dns == {"telemetry.vendor.example": [addr("203.0.113.80")]}


def pointer_chain_message(records: int, chain: int) -> tuple[bytes, int]:
    """A crafted response and the offset of its last pointer: a name of 100 labels,
    then a chain of `chain` pointers, each to the one before, and every answer's
    owner that last pointer. Read naively, each owner costs the whole chain again."""
    head = b"\x00\x01\x81\x80\x00\x01" + records.to_bytes(2, "big") + bytes(4)
    question = b"\x01q\x00\x00\x01\x00\x01"  # at 12
    data_at = 12 + len(question) + 12  # the first answer's data: labels, then the chain
    body = bytearray(b"".join(b"\x01" + bytes([97 + k % 26]) for k in range(100)) + b"\xc0\x0c")
    last = data_at
    for _ in range(chain):
        here = data_at + len(body)
        body += bytes([0xC0 | (last >> 8), last & 0xFF])
        last = here
    first = b"\xc0\x0c\x00\x63\x00\x01\x00\x00\x00\x3c" + len(body).to_bytes(2, "big")
    owner = bytes([0xC0 | (last >> 8), last & 0xFF])
    a_record = owner + b"\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01"
    return head + question + first + bytes(body) + a_record * (records - 1), last


def test_a_pointer_chain_in_every_record_is_read_once():
    msg, last = pointer_chain_message(dns.MAX_RECORDS, 60)
    assert dns.answers(msg) == {}  # read to the end without error: nothing asked about
    names = dns._Names(msg)
    name, end = names.read(last)
    assert name.startswith("a.b.c.") and name.endswith(".v.q") and end == last + 2
    assert names.jumps == 61
    pos = end  # the first A record, right after the chain
    for _ in range(dns.MAX_RECORDS - 1):  # each owner: one jump, to a name known
        assert names.read(pos) == (name, pos + 2)
        pos += 16
    assert names.jumps == 61 + dns.MAX_RECORDS - 1 <= dns.MAX_POINTERS


def test_a_forward_pointer_or_too_many_pointers_teach_nothing():
    forward = b"\x00\x01\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0e\x01a\x00"
    with pytest.raises(ValueError, match="pointer"):
        dns._Names(forward).read(12)
    msg, last = pointer_chain_message(2, dns.MAX_POINTERS + 10)
    with pytest.raises(ValueError, match="too many pointers"):
        dns._Names(msg).read(last)
    assert dns.answers(msg) == {}
