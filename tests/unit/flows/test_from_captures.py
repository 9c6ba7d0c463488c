"""read_traffic: files in order into one flow table, every frame counted, progress,
parallel reads."""

from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, GRE, Ether

from portmatrix.errors import CaptureError
from portmatrix.flows.from_captures import read_traffic
from portmatrix.testing.captures import (
    MAC_A,
    MAC_B,
    T0,
    Pcapng,
    ether,
    flow_dicts,
    tcp_session,
    write_pcap,
)

C, S = "10.0.0.1", "10.0.0.2"


def session(sport=40000, **kw):
    return [ether(p) for p in tcp_session(C, S, sport, 80, **kw)]


def test_a_flow_spanning_two_files_is_one_flow(tmp_path):
    packets = session()
    one = write_pcap(tmp_path / "1.pcap", packets[:2])
    two = write_pcap(tmp_path / "2.pcap", packets[2:], start=T0 + 10_000_000)
    traffic = read_traffic([str(one), str(two)])
    (f,) = flow_dicts(traffic.flows, several_files=True)
    assert (f["outcome"], f["initiator_by"], f["close"]) == ("established", "syn", "fin")
    assert (f["packets_fwd"], f["packets_rev"]) == (5, 3)
    assert f["frames"] == "0:1 0:2 1:1"
    assert [c.path for c in traffic.captures] == [str(one), str(two)]
    assert traffic.packets == 8
    assert traffic.first_ts == T0 and traffic.last_ts == T0 + 10_000_000 + 5_000_000


def test_port_reuse_across_files(tmp_path):
    one = write_pcap(tmp_path / "1.pcap", session(isn=1))
    two = write_pcap(tmp_path / "2.pcap", session(isn=99999), start=T0 + 10**9)
    traffic = read_traffic([str(one), str(two)])
    assert len(traffic.flows) == 2


def test_every_frame_is_counted(tmp_path):
    frames = [
        *session(),
        Ether(src=MAC_A, dst=MAC_B) / ARP(),
        bytes(ether(IP(src=C, dst=S) / UDP()))[:20],
        ether(IP(src=C, dst=S) / GRE(proto=0x0800) / bytes(IP(src=C, dst=S) / TCP())[:10]),
    ]
    w = Pcapng()
    w.interface(1)
    w.interface(195)
    w.packets(frames)
    w.packet(b"\x80\x00" + bytes(30), iface=1)  # 802.15.4: not a link type we decode
    path = w.write(tmp_path / "mixed.pcapng")
    traffic = read_traffic([str(path)])
    c = traffic.counts
    assert c.frames == traffic.packets == 12
    assert (c.ip, c.non_ip, c.unsupported) == (9, {0x0806: 1}, {195: 1})
    assert c.undecodable == {"IP header cut short": 1}
    assert c.inner_undecodable == 1
    assert any("1 tunnelled packets could not be decoded" in n for n in traffic.notices())


def test_progress_is_reported_per_batch(tmp_path, small_chunks):
    path = write_pcap(tmp_path / "p.pcap", session() * 30)
    seen = []
    traffic = read_traffic([str(path)], on_batch=lambda size, packets: seen.append((size, packets)))
    assert len(seen) > 1
    assert sum(p for _, p in seen) == traffic.packets == 240
    assert sum(s for s, _ in seen) == path.stat().st_size  # every byte read, once


def test_files_read_in_parallel_merge_to_the_same_flows(tmp_path):
    # A rolling capture: connections span files, and a port is reused across them.
    packets = []
    for i in range(6):
        packets += session(sport=40000 + i % 3, isn=1000 * (i + 1))
    paths = []
    for n, start in enumerate(range(0, len(packets), 7)):
        path = write_pcap(
            tmp_path / f"roll{n}.pcap", packets[start : start + 7], start=T0 + start * 1_000_000
        )
        paths.append(str(path))
    assert len(paths) > 3
    one = read_traffic(paths)
    many = read_traffic(paths, jobs=3)
    assert flow_dicts(many.flows, several_files=True) == flow_dicts(one.flows, several_files=True)
    assert len(one.flows) == 6
    assert many.counts == one.counts


def test_unreadable_file_is_an_error(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(struct.pack("<IHH", 0xA1B2C3D4, 1, 0) + bytes(16))
    with pytest.raises(CaptureError):
        read_traffic([str(bad)])


def test_no_files_no_flows():
    traffic = read_traffic([])
    assert len(traffic.flows) == 0 and traffic.packets == 0
    assert traffic.first_ts is None and traffic.last_ts is None
