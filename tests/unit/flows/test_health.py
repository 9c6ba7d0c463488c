"""The notices that weaken conclusions: cut files, drops, one-way spans, orphan
fragments, cut TCP flags."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP, UDP, fragment

from portmatrix.flows.from_captures import read_traffic
from portmatrix.testing.captures import (
    Pcapng,
    cut,
    ether,
    pcap_record_offsets,
    tcp_session,
    write_pcap,
)

C, S = "10.0.0.1", "10.0.0.2"


def session(sport=40000, **kw):
    return [ether(p) for p in tcp_session(C, S, sport, 80, **kw)]


def test_notices_for_cut_files_and_drops(tmp_path):
    path = write_pcap(tmp_path / "cut.pcap", session())
    cut(path, pcap_record_offsets(path.read_bytes())[5] + 20)
    w = Pcapng()
    w.interface(1)
    w.packets(session(sport=40001))
    w.stats(0, dropped=12, os_dropped=3)
    dropped = w.write(tmp_path / "drops.pcapng")

    traffic = read_traffic([str(path), str(dropped)])
    notices = traffic.notices()
    assert traffic.drops == 15
    assert any(n.startswith(f"{path}: file cut short in the middle of record 6") for n in notices)
    assert "the capture reports 15 dropped packets" in notices


def test_notice_for_a_span_that_sees_one_direction(tmp_path):
    one_way = []
    for i in range(4):
        one_way += [p for p in session(sport=41000 + i) if p[IP].src == C]
    path = write_pcap(tmp_path / "half.pcap", one_way + session(sport=42000))
    traffic = read_traffic([str(path)])
    assert (traffic.tcp_flows, traffic.tcp_one_way) == (5, 4)
    assert any("4 of 5 TCP flows were seen in one direction only" in n for n in traffic.notices())


def test_no_notices_for_a_clean_capture(tmp_path):
    path = write_pcap(tmp_path / "clean.pcap", session() + session(sport=40001))
    traffic = read_traffic([str(path)])
    assert traffic.notices() == []
    assert traffic.drops == 0 and traffic.collisions == 0


def test_notices_for_orphan_fragments_and_cut_tcp_flags(tmp_path):
    big = IP(src=C, dst=S, id=9) / UDP(sport=1, dport=2) / (b"f" * 2500)
    later = [ether(f) for f in fragment(big, fragsize=1000)[1:]]
    syn = bytes(ether(IP(src=C, dst=S) / TCP(sport=5, dport=6, flags="S")))
    path = write_pcap(tmp_path / "odd.pcap", [*later, syn], snaplen=14 + 20 + 8)
    notices = read_traffic([str(path)]).notices()
    assert "2 IP fragments came without their first fragment: counted in port-0 flows" in notices
    assert "1 TCP packets were cut by the snaplen before their flags" in notices
