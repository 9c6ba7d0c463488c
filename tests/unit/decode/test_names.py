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


def added_by_concatenation(
    parts: list[names.Claims], bound: int, total: names.Claims | None = None
) -> names.Claims:
    """The obvious reference: every batch's claims concatenated to all so far."""
    total = total or names.Claims()
    for other in parts:
        for counts, theirs in ((total.seen, other.seen), (total.damaged, other.damaged)):
            for k, v in theirs.items():
                counts[k] = counts.get(k, 0) + v
        take = min(max(0, bound - len(total)), len(other))
        total.dropped += other.dropped + len(other) - take
        index = {n: i for i, n in enumerate(total.names)}
        for n in other.names:
            index.setdefault(n, len(total.names))
            if index[n] == len(total.names):
                total.names.append(n)
        renumber = np.array([index[n] for n in other.names] or [0], np.int32)
        for col in names.Claims.COLUMNS:
            setattr(total, col, np.concatenate([getattr(total, col), getattr(other, col)[:take]]))
        total.name = np.concatenate([total.name, renumber[other.name[:take]]])
    return total


def batch_claims(rng, size: int) -> names.Claims:
    """A batch's claims as `learn` makes them: its own names, numbered from 0."""
    hosts = [f"h{k}.example" for k in rng.choice(40, rng.integers(1, 5), replace=False)]
    c = names.Claims(names=hosts)
    for col in names.Claims.COLUMNS:
        dtype = getattr(c, col).dtype
        setattr(c, col, rng.integers(0, 100, size).astype(dtype))
    c.name = rng.integers(0, len(hosts), size).astype(np.int32)
    c.seen = {"tls-sni": int(size) + 1}
    c.dropped = int(rng.integers(0, 2))
    return c


def same_claims(a: names.Claims, b: names.Claims) -> bool:
    """Every column (values and dtype), the names and the counts alike."""
    columns = (*names.Claims.COLUMNS, "name")
    return all(
        np.array_equal(getattr(a, c), getattr(b, c)) and getattr(a, c).dtype == getattr(b, c).dtype
        for c in columns
    ) and (a.names, a.seen, a.damaged, a.cut, a.dropped) == (
        b.names,
        b.seen,
        b.damaged,
        b.cut,
        b.dropped,
    )


def test_claims_of_many_batches_are_those_of_concatenating_them(monkeypatch):
    import pickle

    rng = np.random.default_rng(7)
    parts = [batch_claims(rng, int(rng.integers(0, 300))) for _ in range(400)]
    monkeypatch.setattr(names, "MAX_CLAIMS", 40_000)  # reached about two thirds in
    expected = added_by_concatenation(parts, 40_000)
    total, early = names.Claims(), None
    for k, part in enumerate(parts):
        total.add(part)
        if k == 10:
            early = {col: getattr(total, col).copy() for col in (*names.Claims.COLUMNS, "name")}
            kept = {col: getattr(total, col) for col in early}  # views held meanwhile
    assert len(total) == 40_000 and total.dropped == expected.dropped > 0
    assert same_claims(total, expected)
    for col in early:
        assert np.array_equal(kept[col], early[col])  # a column taken before is unchanged
    again = pickle.loads(pickle.dumps(total))  # to and from worker processes
    assert same_claims(again, total) and not again._room
    assert len(pickle.dumps(total)) < 1.1 * len(pickle.dumps(expected))  # no spare room
    monkeypatch.setattr(names, "MAX_CLAIMS", 50_000)
    again.add(parts[1])  # and it goes on growing after
    assert len(again) == 40_000 + len(parts[1]) > 40_000
    assert same_claims(again, added_by_concatenation(parts[1:2], 50_000, expected))


def test_a_batch_naming_many_flows_keeps_every_claim_in_order():
    hosts = ("api.mixpanel.com", "s3.us-west-1.amazonaws.com", "www.example.org")
    packets = []
    for k in range(300):
        packets += tls_flow(hosts[k % 3], sport=41000 + k)
    request = [("c", apps.http_request("api.mixpanel.com"))]
    packets += apps.conversation(CLIENT, SERVER, 40999, 80, request)
    found = learned(packets)
    named = [k for k in range(300) if k % 3 != 2]  # www.example.org holds no role
    assert claims_of(found) == [
        *((hosts[k % 3], "tls-sni", CLIENT, SERVER, 443) for k in named),
        ("api.mixpanel.com", "http-host", CLIENT, SERVER, 80),
    ]
    assert found.sport.tolist() == [41000 + k for k in named] + [40999]
    assert found.names == ["api.mixpanel.com", "s3.us-west-1.amazonaws.com"]
    assert found.seen == {"tls-sni": 300, "http-host": 1}
    assert [getattr(found, c).dtype for c in ("src_hi", "sport", "ts", "how", "name")] == [
        np.uint64,
        np.int64,
        np.int64,
        np.int8,
        np.int32,
    ]
