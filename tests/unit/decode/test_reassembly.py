"""Later IP fragments join the flow of their first fragment, within a batch and
across batches; orphans keep port 0 and are counted."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6

from portmatrix.decode import batch as b
from portmatrix.decode import reassembly
from portmatrix.decode.reassembly import FragmentPorts
from portmatrix.flows.from_captures import read_traffic
from portmatrix.testing.captures import (
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


def test_later_fragments_get_the_ports_of_their_first():
    rows, _ = decode_packets(datagram(1))
    ports = FragmentPorts()
    ports.resolve(rows)
    assert rows.sport.tolist() == [2049] * 4 and rows.dport.tolist() == [789] * 4
    assert ports.unresolved == 0


def test_fragments_join_one_flow():
    f = flow_dicts(flows_of(datagram(1) + datagram(2)))
    assert len(f) == 1
    assert (f[0]["initiator_port"], f[0]["responder_port"], f[0]["packets_fwd"]) == (2049, 789, 8)


def test_out_of_order_within_a_batch():
    frags = datagram(1)
    f = flow_dicts(flows_of(frags[::-1]))
    assert len(f) == 1 and f[0]["packets_fwd"] == 4


def test_datagrams_are_told_apart_by_id_and_addresses():
    packets = datagram(1, sport=1111) + datagram(2, sport=2222) + datagram(1, 3333, src="10.0.0.3")
    got = {
        (g["initiator"], g["initiator_port"]): g["packets_fwd"]
        for g in flow_dicts(flows_of(packets))
    }
    assert got == {(C, 1111): 4, (C, 2222): 4, ("10.0.0.3", 3333): 4}


def test_orphan_later_fragment_is_counted():
    frags = datagram(1)
    flows = flows_of(frags[1:])  # the first fragment was not captured
    assert flows.fragments_unresolved == 3
    (f,) = flow_dicts(flows)
    assert (f["initiator_port"], f["responder_port"], f["packets_fwd"]) == (0, 0, 3)


def test_ipv6_fragments_join_one_flow():
    big = (
        IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrFragment(id=77)
        / UDP(sport=4000, dport=4001)
        / (b"v" * 3000)
    )
    (f,) = flow_dicts(flows_of([ether(x) for x in fragment6(big, 1280)]))
    assert (f["initiator_port"], f["responder_port"], f["packets_fwd"]) == (4000, 4001, 3)


def test_fragmented_ping_joins_its_echo_flow():
    req = IP(src=C, dst=S, id=5) / ICMP(type=8, id=99) / (b"p" * 3000)
    rep = IP(src=S, dst=C, id=6) / ICMP(type=0, id=99) / (b"p" * 3000)
    packets = [ether(x) for x in fragment(req, 1000) + fragment(rep, 1000)]
    (f,) = flow_dicts(flows_of(packets))
    assert (f["proto"], f["initiator_by"], f["packets_fwd"], f["packets_rev"]) == (
        "icmp",
        "request",
        4,
        4,
    )


def test_across_batches(tmp_path, small_chunks):
    # 100-byte chunks: every fragment arrives in a batch of its own.
    path = write_pcap(tmp_path / "frags.pcap", datagram(1) + datagram(2) + datagram(3))
    assert path.stat().st_size > 4096 + 10 * small_chunks
    traffic = read_traffic([str(path)])
    assert traffic.flows.fragments_unresolved == 0
    (f,) = flow_dicts(traffic.flows)
    assert f["packets_fwd"] == 12


def test_orphan_across_batches_is_counted(tmp_path, small_chunks):
    frags = datagram(1) + datagram(2) + datagram(3)
    path = write_pcap(tmp_path / "frags.pcap", frags[:4] + frags[5:])  # datagram 2's head lost
    traffic = read_traffic([str(path)])
    assert traffic.flows.fragments_unresolved == 3
    got = {(g["initiator_port"], g["packets_fwd"]) for g in flow_dicts(traffic.flows)}
    assert got == {(2049, 8), (0, 3)}
    assert any("3 IP fragments came without their first fragment" in n for n in traffic.notices())


def test_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(reassembly, "MEMORY", 2)
    ports = FragmentPorts()
    heads = [datagram(i, sport=1000 + i)[0] for i in range(1, 5)]
    ports.resolve(decode_packets(heads)[0])
    assert len(ports.keys) == 2
    tails = decode_packets([datagram(1)[1], datagram(4)[1]])[0]
    assert tails.frag.tolist() == [b.LATER_FRAGMENT] * 2
    ports.resolve(tails)
    assert tails.sport.tolist() == [0, 1004]  # the oldest first fragment was forgotten
    assert ports.unresolved == 1
