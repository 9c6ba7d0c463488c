"""The capture builder is public API (docs/testing-your-matrix.md): its example
runs as written, its files read back with scapy's own readers (an oracle
independent of ours), its sessions have the shape they promise, and importing
it loads no scapy. (tests/conformance checks tshark reads what it builds.)"""

from __future__ import annotations

import re
import struct
import subprocess
import sys

import pytest
from scapy.layers.inet import TCP, UDP
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.utils import RawPcapNgReader, RawPcapReader

from portmatrix.testing.captures import (
    MAC_A,
    MAC_B,
    STEP,
    T0,
    Frame,
    Pcapng,
    cut,
    ether,
    flow_dicts,
    flows_of,
    frames,
    gzipped,
    ip,
    patch,
    pcap_bytes,
    pcap_record_offsets,
    raw_batch,
    tcp_session,
    ticks,
    write_pcap,
)
from support.paths import REPO
from support.site import write_site

DOC = REPO / "docs" / "testing-your-matrix.md"


def test_the_documented_example_runs(tmp_path, monkeypatch):
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    site = write_site(tmp_path)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "inventory.yaml").write_text(
        "roles:\n  nodes: [10.20.0.11-10.20.0.16]\n  admins: [10.30.0.5]\n"
    )
    (tmp_path / "site" / "exceptions.yaml").write_text(
        "name: site\nexceptions:\n  - id: backup-ssh\n    from: [10.9.9.9]\n    to: nodes\n"
        "    proto: tcp\n    ports: 22\n    reason: nightly backup pulls over scp\n"
    )
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    namespace["test_backup_may_pull_over_ssh"](tmp_path)
    assert site.matrix.exists()


def test_a_session_is_what_it_says(tmp_path):
    packets = tcp_session("10.0.0.1", "10.0.0.2", 40000, 22, data=[b"a", b"bc"])
    flags = [str(p["TCP"].flags) for p in packets]
    assert flags == ["S", "SA", "A", "PA", "A", "PA", "A", "FA", "FA", "A"]
    with pytest.raises(ValueError, match="close must be"):
        tcp_session("10.0.0.1", "10.0.0.2", 1, 2, close="slam")


PACKETS = [
    ether(ip("10.0.0.1", "10.0.0.2") / UDP(sport=1000 + i, dport=53) / b"q") for i in range(3)
]


@pytest.mark.parametrize("little", [True, False], ids=["le", "be"])
@pytest.mark.parametrize("nanos", [False, True], ids=["us", "ns"])
def test_pcap_reads_back_with_scapy(tmp_path, little, nanos):
    path = write_pcap(tmp_path / "a.pcap", PACKETS, little=little, nanos=nanos, linktype=1)
    with RawPcapReader(str(path)) as reader:
        records = list(reader)
        assert reader.linktype == 1
    assert [data for data, _ in records] == [bytes(p) for p in PACKETS]
    scale = 10**9 if nanos else 10**6
    times = [(meta.sec * scale + meta.usec) * (10**9 // scale) for _, meta in records]
    assert times == [T0 + i * STEP for i in range(3)]
    size = 16 + len(bytes(PACKETS[0]))  # record header and frame
    assert pcap_record_offsets(path.read_bytes()) == [24, 24 + size, 24 + 2 * size]


def test_snaplen_cuts_frames_and_keeps_their_wire_length(tmp_path):
    path = write_pcap(tmp_path / "a.pcap", [Frame(bytes(100), wirelen=1500)], snaplen=64)
    ((data, meta),) = list(RawPcapReader(str(path)))
    assert (len(data), meta.wirelen, meta.caplen) == (64, 1500, 64)


def test_pcapng_reads_back_with_scapy(tmp_path):
    w = Pcapng()
    first = w.interface(1, tsresol=9, name="eth0")
    second = w.interface(1)
    w.packets(PACKETS[:2], iface=first)
    w.packet(PACKETS[2], iface=second, ts=T0 + 5_123_456)
    path = w.write(tmp_path / "a.pcapng")
    with RawPcapNgReader(str(path)) as reader:
        records = list(reader)
    assert [data for data, _ in records] == [bytes(p) for p in PACKETS]
    assert [meta.tsresol for _, meta in records] == [10**9, 10**9, 10**6]  # by interface
    stamps = [(meta.tshigh << 32) | meta.tslow for _, meta in records]
    assert stamps == [T0, T0 + STEP, (T0 + 5_123_456) // 1000]  # ns, then µs ticks
    assert w.offsets()[0] == 0 and len(w.offsets()) == 6  # section, 2 interfaces, 3 packets


def test_ticks_for_every_kind_of_resolution():
    assert ticks(1_500_000_000, 6) == 1_500_000
    assert ticks(1_500_000_000, 9) == 1_500_000_000
    assert ticks(1_500_000_000, 3) == 1_500
    assert ticks(1_500_000_000, 12) == 1_500_000_000_000
    assert ticks(1_500_000_000, 0x80 | 10) == 1536  # 2^-10 s


def test_big_endian_sections_and_unknown_blocks():
    w = Pcapng()
    w.section(little=False)
    w.interface(1)
    w.block(0x0BAD, b"x")
    w.packet(PACKETS[0])
    data = w.bytes()
    assert data[8:12] == struct.pack(">I", 0x1A2B3C4D)  # byte-order magic
    assert len(data) % 4 == 0
    assert struct.unpack_from(">I", data, w.offsets()[2])[0] == 0x0BAD


def test_frames_keep_given_frames_and_time_the_rest():
    given = Frame(b"abc", ts=7, wirelen=9, iface=2)
    out = frames([b"x", given, PACKETS[0]], start=100, step=10)
    assert out[0] == Frame(b"x", ts=100) and out[1] is given and out[2].ts == 120
    assert (given.length, out[0].length) == (9, 1)


def test_ether_tags_outer_ones_as_service_tags():
    frame = ether(ip("10.0.0.1", "10.0.0.2"), vlans=[100, 200])
    assert (frame[Ether].src, frame[Ether].dst) == (MAC_A, MAC_B)
    assert frame[Dot1AD].vlan == 100 and frame[Dot1Q].vlan == 200
    assert ip("fd00::1", "fd00::2").version == 6 and ip("10.0.0.1", "10.0.0.2").version == 4


def flags(packets) -> list[str]:
    return [str(p[TCP].flags) for p in packets]


def test_tcp_session_shapes():
    full = tcp_session("10.0.0.1", "10.0.0.2", 40000, 22, data=[b"ab", b"c"])
    assert flags(full) == ["S", "SA", "A", "PA", "A", "PA", "A", "FA", "FA", "A"]
    assert [p[TCP].seq for p in full[3:7:2]] == [1001, 1003]  # payloads in sequence
    assert full[0][TCP].sport == 40000 and full[1][TCP].sport == 22
    assert flags(tcp_session("a::1", "a::2", 1, 2, close="rst", data=[])) == ["S", "SA", "A", "R"]
    assert flags(tcp_session("10.0.0.1", "10.0.0.2", 1, 2, handshake=False, close="open")) == [
        "PA",
        "A",
    ]
    with pytest.raises(ValueError, match="close must be fin, rst or open"):
        tcp_session("10.0.0.1", "10.0.0.2", 1, 2, close="slam")


def test_in_memory_pipeline():
    raw = raw_batch(PACKETS, start=T0, step=5, first_frame=10)
    assert raw.frame.tolist() == [10, 11, 12] and raw.ts.tolist() == [T0, T0 + 5, T0 + 10]
    size = len(bytes(PACKETS[0]))
    assert raw.offset.tolist() == [0, size, 2 * size]
    assert raw.data[size : 2 * size].tobytes() == bytes(PACKETS[1])
    (row,) = flow_dicts(flows_of(PACKETS[:1]))
    assert (row["initiator"], row["responder"], row["responder_port"]) == (
        "10.0.0.1",
        "10.0.0.2",
        53,
    )
    assert len(raw_batch([])) == 0


def test_damage_and_compression(tmp_path):
    import gzip

    path = write_pcap(tmp_path / "a.pcap", PACKETS)
    whole = path.read_bytes()
    assert gzip.decompress(gzipped(path).read_bytes()) == whole
    assert gzipped(path, tmp_path / "b.gz").name == "b.gz"
    patch(path, 0, b"\0\0")
    assert path.read_bytes() == b"\0\0" + whole[2:]
    assert cut(path, 30, tmp_path / "c.pcap").read_bytes() == b"\0\0" + whole[2:30]
    assert len(cut(path, 10).read_bytes()) == 10


def test_importing_the_builder_loads_no_scapy():
    code = "import sys, portmatrix.testing.captures; print('scapy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_pcap_bytes_header():
    head = pcap_bytes([], little=False, nanos=True, snaplen=96, linktype=101, version=(2, 3))
    assert head == struct.pack(">IHHiIII", 0xA1B23C4D, 2, 3, 0, 0, 96, 101)
