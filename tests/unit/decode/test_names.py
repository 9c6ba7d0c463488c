"""Names clients give their destinations, learned batch by batch: only role
hostnames are kept, each claim with its flow's ends; damaged hellos are counted,
servers' QUIC Initials are not read, and Claims merge."""

from __future__ import annotations

import numpy as np
from scapy.layers.inet import UDP

from portmatrix.addresses import to_text
from portmatrix.decode import decode, names
from portmatrix.testing.captures import ip, raw_batch
from support import apps

CLIENT, SERVER = "10.1.0.5", "52.219.1.10"
WANTED = frozenset({"s3.us-west-1.amazonaws.com", "api.mixpanel.com"})


def learned(packets):
    raw = raw_batch(apps.frames_of(packets))
    rows, _ = decode(raw)
    return names.learn(raw, rows, WANTED)


def claims_of(c: names.Claims) -> list[tuple]:
    return [
        (
            c.names[int(c.name[k])],
            names.HOW[int(c.how[k])],
            to_text((int(c.src_hi[k]) << 64) | int(c.src_lo[k])),
            to_text((int(c.dst_hi[k]) << 64) | int(c.dst_lo[k])),
            int(c.dport[k]),
        )
        for k in range(len(c))
    ]


def tls_flow(sni: str, port: int = 443, sport: int = 40000):
    hello = apps.tls_record(apps.client_hello(sni))
    return apps.conversation(CLIENT, SERVER, sport, port, [("c", hello), ("s", apps.SERVER_HELLO)])


def test_sni_host_and_quic_name_their_flows_destination():
    packets = tls_flow("S3.us-west-1.amazonaws.com", port=8443)
    packets += apps.conversation(
        CLIENT, SERVER, 40001, 80, [("c", apps.http_request("api.mixpanel.com"))]
    )
    quic = apps.quic_initial(apps.client_hello("s3.us-west-1.amazonaws.com", ("h3",)))
    packets.append(ip(CLIENT, SERVER) / UDP(sport=40002, dport=4433) / quic)
    found = learned(packets)
    assert claims_of(found) == [
        ("s3.us-west-1.amazonaws.com", "tls-sni", CLIENT, SERVER, 8443),
        ("api.mixpanel.com", "http-host", CLIENT, SERVER, 80),
        ("s3.us-west-1.amazonaws.com", "quic-sni", CLIENT, SERVER, 4433),
    ]
    assert found.seen == {"tls-sni": 1, "http-host": 1, "quic-sni": 1}
    assert not found.damaged and not found.cut


def test_names_no_role_gives_are_not_kept():
    found = learned(tls_flow("www.example.org"))
    assert len(found) == 0 and found.seen == {"tls-sni": 1}


def test_nothing_is_read_when_no_name_is_wanted():
    raw = raw_batch(apps.frames_of(tls_flow("s3.us-west-1.amazonaws.com")))
    rows, _ = decode(raw)
    found = names.learn(raw, rows, frozenset())
    assert len(found) == 0 and not found.seen


def test_a_damaged_hello_is_counted_not_read():
    record = bytearray(apps.tls_record(apps.client_hello("s3.us-west-1.amazonaws.com")))
    record[9:11] = b"\x09\x09"  # the legacy version: no TLS version at all
    packets = apps.conversation(CLIENT, SERVER, 40000, 443, [("c", bytes(record))])
    found = learned(packets)
    assert len(found) == 0 and found.damaged == {"tls-sni": 1}


def test_a_hello_longer_than_its_segment_is_counted_as_cut():
    record = apps.tls_record(apps.client_hello("s3.us-west-1.amazonaws.com", pad=2000))
    first, rest = record[:1400], record[1400:]
    found = learned(apps.conversation(CLIENT, SERVER, 40000, 443, [("c", first), ("c", rest)]))
    # Its name was in the first segment: read; the hello went on: counted.
    assert [c[1] for c in claims_of(found)] == ["tls-sni"]
    assert found.cut == {"tls-sni": 1} and not found.damaged


def test_the_servers_quic_initial_is_not_read():
    hello = apps.client_hello("s3.us-west-1.amazonaws.com", ("h3",))
    client = ip(CLIENT, SERVER) / UDP(sport=40002, dport=443) / apps.quic_initial(hello)
    # The server answers with an Initial of its own (its keys: unreadable here).
    server = (
        ip(SERVER, CLIENT)
        / UDP(sport=443, dport=40002)
        / apps.quic_initial(b"\x02" + bytes(300), dcid=b"\x09" * 8)
    )
    found = learned([client, server])
    assert [c[1] for c in claims_of(found)] == ["quic-sni"]
    assert found.seen == {"quic-sni": 1} and not found.damaged


def test_claims_merge_and_stay_bounded(monkeypatch):
    a = learned(tls_flow("s3.us-west-1.amazonaws.com"))
    b = learned(
        apps.conversation(CLIENT, SERVER, 41000, 80, [("c", apps.http_request("api.mixpanel.com"))])
    )
    total = names.Claims()
    total.add(a)
    total.add(b)
    assert [c[0] for c in claims_of(total)] == ["s3.us-west-1.amazonaws.com", "api.mixpanel.com"]
    assert total.seen == {"tls-sni": 1, "http-host": 1}
    monkeypatch.setattr(names, "MAX_CLAIMS", 2)
    total.add(a)
    assert len(total) == 2 and total.dropped == 1
    assert np.array_equal(total.name, [0, 1])
