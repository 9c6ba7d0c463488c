"""IP fragments, IPv4 and IPv6: later fragments join the flow of their first, in
any order, within a batch and across batches; a datagram counts as one packet of
its flow with the bytes of all its fragments (as tshark and Zeek count it);
orphans, datagrams never completed and overlapping ones are counted; memory and
waiting time are bounded."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6

from portmatrix.decode import batch as b
from portmatrix.decode import reassembly
from portmatrix.decode.reassembly import FragmentPorts
from portmatrix.flows.from_captures import read_traffic
from portmatrix.testing.captures import (
    STEP,
    T0,
    Frame,
    decode_packets,
    ether,
    flow_dicts,
    flows_of,
    write_pcap,
)

C, S = "10.0.0.1", "10.0.0.2"


def datagram(ident: int, sport: int = 2049, size: int = 3000, src: str = C):
    big = IP(src=src, dst=S, id=ident) / UDP(sport=sport, dport=789) / (b"n" * size)
    return [ether(f) for f in fragment(big, fragsize=1000)]


def datagram6(ident: int, size: int = 3000):
    big = (
        IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrFragment(id=ident)
        / UDP(sport=4000, dport=4001)
        / (b"v" * size)
    )
    return [ether(x) for x in fragment6(big, 1280)]


def test_later_fragments_get_the_ports_of_their_first():
    rows, _ = decode_packets(datagram(1))
    assert rows.frag.tolist() == [b.FIRST_FRAGMENT, b.LATER_FRAGMENT, b.LATER_FRAGMENT] + [
        b.LAST_FRAGMENT
    ]
    assert rows.frag_off.tolist() == [0, 1000, 2000, 3000]
    ports = FragmentPorts()
    rows = ports.resolve(rows)
    assert rows.sport.tolist() == [2049] * 4 and rows.dport.tolist() == [789] * 4
    assert rows.frag.tolist() == [b.FIRST_FRAGMENT] + [b.JOINED_FRAGMENT] * 3
    assert ports.counts() == {
        "fragments_unresolved": 0,
        "fragments_incomplete": 0,
        "fragments_overlapping": 0,
    }


def test_a_datagram_is_one_packet_with_the_bytes_of_all_its_fragments():
    frames = datagram(1) + datagram(2)
    f = flow_dicts(flows_of(frames))
    assert len(f) == 1
    assert (f[0]["initiator_port"], f[0]["responder_port"], f[0]["packets_fwd"]) == (2049, 789, 2)
    assert f[0]["bytes_fwd"] == sum(len(bytes(x)) for x in frames)


def test_out_of_order_within_a_batch():
    f = flow_dicts(flows_of(datagram(1)[::-1]))
    assert len(f) == 1 and f[0]["packets_fwd"] == 1 and f[0]["initiator_port"] == 2049


def test_datagrams_are_told_apart_by_id_and_addresses():
    packets = datagram(1, sport=1111) + datagram(2, sport=2222) + datagram(1, 3333, src="10.0.0.3")
    got = {
        (g["initiator"], g["initiator_port"]): g["packets_fwd"]
        for g in flow_dicts(flows_of(packets))
    }
    assert got == {(C, 1111): 1, (C, 2222): 1, ("10.0.0.3", 3333): 1}


def test_a_duplicated_first_fragment_is_not_a_second_datagram():
    frags = datagram(1)
    f = flow_dicts(flows_of([frags[0], frags[0], *frags[1:], frags[-1]]))
    assert f[0]["packets_fwd"] == 1


def test_an_identification_used_again_after_its_datagram_completed_is_a_new_one(
    tmp_path, small_chunks
):
    path = write_pcap(tmp_path / "again.pcap", datagram(1) + datagram(1))
    (f,) = flow_dicts(read_traffic([str(path)]).flows)
    assert f["packets_fwd"] == 2


def test_orphan_later_fragments_are_counted_in_a_port_0_flow():
    flows = flows_of(datagram(1)[1:])  # the first fragment was not captured
    assert flows.fragments_unresolved == 3 and flows.fragments_incomplete == 1
    (f,) = flow_dicts(flows)
    assert (f["initiator_port"], f["responder_port"], f["packets_fwd"]) == (0, 0, 3)


def test_a_lost_fragment_leaves_the_datagram_incomplete():
    frags = datagram(1)
    flows = flows_of([frags[0], frags[1], frags[3]])
    assert (flows.fragments_incomplete, flows.fragments_unresolved) == (1, 0)
    assert flow_dicts(flows)[0]["packets_fwd"] == 1  # the attempt still counts


def test_overlapping_fragments_are_counted():
    payload = bytes(UDP(sport=5, dport=6) / (b"o" * 40))
    pieces = [
        IP(src=C, dst=S, id=9, proto=17, flags="MF", frag=0) / payload[:24],
        IP(src=C, dst=S, id=9, proto=17, flags="MF", frag=2) / payload[16:32],  # 16..32 < 24
        IP(src=C, dst=S, id=9, proto=17, frag=4) / payload[32:],
    ]
    flows = flows_of([ether(p) for p in pieces])
    assert (flows.fragments_overlapping, flows.fragments_incomplete) == (1, 0)


def test_ipv6_fragments_join_one_flow():
    frags = datagram6(77)
    (f,) = flow_dicts(flows_of(frags))
    assert (f["initiator_port"], f["responder_port"], f["packets_fwd"]) == (4000, 4001, 1)
    rows, _ = decode_packets(frags)
    assert rows.frag_off.tolist() == [0, 1232, 2464]
    assert sum(rows.frag_len.tolist()) == 8 + 3000


def test_ipv6_fragments_out_of_order_across_batches(tmp_path, small_chunks):
    # Linux sends fragments last first: the first fragment comes in a later batch.
    path = write_pcap(tmp_path / "v6.pcap", datagram6(5)[::-1] + datagram6(6)[::-1])
    traffic = read_traffic([str(path)])
    (f,) = flow_dicts(traffic.flows)
    assert (f["initiator_port"], f["packets_fwd"]) == (4000, 2)
    assert traffic.fragments_unresolved == traffic.fragments_incomplete == 0


def test_fragmented_ping_joins_its_echo_flow():
    req = IP(src=C, dst=S, id=5) / ICMP(type=8, id=99) / (b"p" * 3000)
    rep = IP(src=S, dst=C, id=6) / ICMP(type=0, id=99) / (b"p" * 3000)
    packets = [ether(x) for x in fragment(req, 1000) + fragment(rep, 1000)]
    (f,) = flow_dicts(flows_of(packets))
    assert (f["proto"], f["initiator_by"], f["packets_fwd"], f["packets_rev"]) == (
        "icmp",
        "request",
        1,
        1,
    )


def test_across_batches(tmp_path, small_chunks):
    # 100-byte chunks: every fragment arrives in a batch of its own.
    path = write_pcap(tmp_path / "frags.pcap", datagram(1) + datagram(2) + datagram(3))
    assert path.stat().st_size > 4096 + 10 * small_chunks
    traffic = read_traffic([str(path)])
    assert traffic.flows.fragments_unresolved == 0
    (f,) = flow_dicts(traffic.flows)
    assert f["packets_fwd"] == 3


def test_orphan_across_batches_is_counted(tmp_path, small_chunks):
    frags = datagram(1) + datagram(2) + datagram(3)
    path = write_pcap(tmp_path / "frags.pcap", frags[:4] + frags[5:])  # datagram 2's head lost
    traffic = read_traffic([str(path)])
    assert traffic.flows.fragments_unresolved == 3
    got = {(g["initiator_port"], g["packets_fwd"]) for g in flow_dicts(traffic.flows)}
    assert got == {(2049, 2), (0, 3)}
    notices = traffic.notices()
    assert any("3 IP fragments came without their first fragment" in n for n in notices)
    assert any("1 fragmented IP datagrams never arrived whole" in n for n in notices)


def test_a_fragment_waits_for_its_first_no_longer_than_the_timeout():
    frags = datagram(1)
    late = [Frame(bytes(f), ts=T0 + i * STEP) for i, f in enumerate(frags[1:])]
    head = Frame(bytes(frags[0]), ts=T0 + reassembly.TIMEOUT + 10 * STEP)
    ports = FragmentPorts()
    first = ports.resolve(decode_packets(late)[0])
    assert len(first) == 0 and len(ports.waiting) == 3  # held back, waiting
    second = ports.resolve(decode_packets([head])[0])
    assert sorted(second.sport.tolist()) == [0, 0, 0, 2049]  # given up before it came
    assert ports.unresolved == 3


def test_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(reassembly, "MEMORY", 2)
    ports = FragmentPorts()
    heads = [datagram(i, sport=1000 + i)[0] for i in range(1, 5)]
    ports.resolve(decode_packets(heads)[0])
    assert len(ports.keys) == 2 and len(ports.pieces["key"]) == 2
    assert ports.incomplete == 2  # the two oldest open datagrams were given up
    tails = ports.resolve(decode_packets([datagram(1)[1], datagram(4)[1]])[0])
    assert sorted(tails.sport.tolist()) == [1004]  # datagram 1's first was forgotten...
    assert len(ports.waiting) == 1  # ... so its fragment waits
    assert len(ports.flush()) == 1 and ports.unresolved == 1
