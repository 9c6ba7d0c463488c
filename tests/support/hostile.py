"""Hostile inputs, built small for the tests and large for `benchmarks/hostile.py`:
captures whose every block costs the reader work, DNS answers that are chains
of compression pointers, a record claiming 4 GB under a 0xFFFFFFFF snaplen,
frames wrapped deeper than the decoder goes, a SYN flood, YAML alias bombs,
Zeek logs of NaNs, infinities and huge integers."""

from __future__ import annotations

import struct

from portmatrix.testing.captures import T0, Pcapng, ether, ip, pcap_bytes

CLIENT, SERVER = "10.0.2.7", "10.0.0.1"


def _syn(k: int = 0) -> bytes:
    from scapy.layers.inet import TCP

    return bytes(ether(ip(CLIENT, SERVER) / TCP(sport=40000 + k % 20000, dport=22, flags="S")))


def interface_storm(blocks: int) -> bytes:
    """An interface description before every packet (each named apart): a reader
    that redoes per-interface work per block is quadratic."""
    w = Pcapng()
    syn = _syn()
    for k in range(blocks):
        iface = w.interface(1, name=f"if{k % 4000}", tsresol=9)
        w.packet(syn, iface=iface, ts=T0 + k)
        if iface == 3999:
            w.section()
    return w.bytes()


def section_storm(blocks: int) -> bytes:
    """A section header, an interface and a packet, again and again."""
    w = Pcapng()
    syn = _syn()
    for k in range(blocks):
        w.section(little=k % 2 == 0)
        w.interface(1, tsresol=9)
        w.packet(syn, ts=T0 + k)
    return w.bytes()


def statistics_storm(blocks: int) -> bytes:
    """One interface, then a statistics block before every packet."""
    w = Pcapng()
    w.interface(1, tsresol=9)
    syn = _syn()
    for k in range(blocks):
        w.stats(0, received=k, dropped=1)
        w.packet(syn, ts=T0 + k)
    return w.bytes()


def dns_pointer_message(records: int = 255, chain: int = 30) -> bytes:
    """A DNS response whose every answer's owner is the end of a chain of `chain`
    compression pointers into a name of 100 labels: read naively, each answer
    follows the whole chain again."""
    head = b"\x00\x01\x81\x80\x00\x01" + records.to_bytes(2, "big") + bytes(4)
    question = b"\x01q\x00\x00\x01\x00\x01"
    data_at = 12 + len(question) + 12
    body = bytearray(b"".join(b"\x01" + bytes([97 + k % 26]) for k in range(100)) + b"\xc0\x0c")
    last = data_at
    for _ in range(chain):
        here = data_at + len(body)
        body += bytes([0xC0 | (last >> 8), last & 0xFF])
        last = here
    first = b"\xc0\x0c\x00\x63\x00\x01\x00\x00\x00\x3c" + len(body).to_bytes(2, "big")
    owner = bytes([0xC0 | (last >> 8), last & 0xFF])
    answer = owner + b"\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01"
    return head + question + first + bytes(body) + answer * (records - 1)


def dns_pointer_capture(responses: int) -> bytes:
    """`responses` DNS responses of `dns_pointer_message`, as a pcap."""
    from scapy.layers.inet import UDP

    message = dns_pointer_message()
    frame = bytes(ether(ip(SERVER, CLIENT) / UDP(sport=53, dport=5353) / message))
    return pcap_bytes([frame] * responses)


def huge_record_pcap(tail: int) -> bytes:
    """A pcap with a snaplen of 0xFFFFFFFF whose second record claims 4 GB, then
    `tail` bytes: a reader that waits for the record's end holds them all."""
    data = pcap_bytes([_syn()], snaplen=0xFFFF_FFFF)
    return data + struct.pack("<IIII", 1, 0, 0xFFFF_FFF0, 0xFFFF_FFF0) + bytes(tail)


def deep_frames() -> list[bytes]:
    """Frames wrapped past every depth limit: 4 tunnels, 13 VLAN tags, 13 MPLS
    labels without a bottom, 300 IPv6 extension headers."""
    from scapy.contrib.mpls import MPLS
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
    from scapy.layers.l2 import GRE, Ether

    inner = ip(CLIENT, SERVER) / TCP(sport=40000, dport=22, flags="S")
    tunnels = inner
    for k in range(4):
        tunnels = ip(f"203.0.113.{2 * k + 1}", f"203.0.113.{2 * k + 2}") / GRE() / tunnels
    labels = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b")
    for k in range(13):
        labels = labels / MPLS(label=16 + k, s=0)
    ext = IPv6(src="fd00::1", dst="fd00::2")
    for _ in range(300):
        ext = ext / IPv6ExtHdrDestOpt()
    return [
        bytes(ether(tunnels)),
        bytes(ether(inner, vlans=list(range(1, 14)))),
        bytes(labels / inner),
        bytes(ether(ext / TCP(sport=1, dport=22, flags="S"))),
    ]


def syn_flood(packets: int) -> bytes:
    """`packets` SYNs from one host to as many ports: one scan, never `packets`
    findings (findings at scale)."""
    from scapy.layers.inet import TCP

    first = bytes(ether(ip(CLIENT, SERVER) / TCP(sport=40000, dport=1, flags="S")))
    frames = []
    for k in range(packets):
        port = 1 + k % 65535
        frame = bytearray(first)
        struct.pack_into(">H", frame, 14 + 20 + 2, port)  # the TCP destination port
        frames.append(bytes(frame))
    return pcap_bytes(frames, step=1000)


def alias_bomb(levels: int = 9) -> str:
    """Billion laughs: each level lists the one before nine times."""
    lines = [
        "name: bomb",
        'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
    ]
    for k in range(1, levels):
        lines.append(f"l{k}: &l{k} [" + ", ".join([f"*l{k - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


ZEEK_FIELDS = (
    "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\t"
    "conn_state\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes"
)


def zeek_log(lines: int) -> str:
    """A conn.log whose records cycle through every value out of range."""
    bad = ("nan", "inf", "-inf", "-1", "1e400", "9" * 40, "", "\x1b[2J")
    out = ["#separator \\x09", "#unset_field\t-", f"#fields\t{ZEEK_FIELDS}"]
    for k in range(lines):
        v = bad[k % len(bad)]
        out.append(
            f"{v if k % 3 == 0 else 1709287200 + k}\tC{k}\t10.0.2.7\t{40000 + k % 20000}\t"
            f"10.0.0.1\t22\ttcp\t{v}\tSF\tShAF\t{v}\t{v}\t2\t100"
        )
    return "\n".join(out) + "\n"
