"""Write a large synthetic capture fast (numpy, not scapy per packet).

A realistic mix: TCP sessions with handshake, data and teardown, UDP
request/response, ICMP echo, 10% of flows VLAN-tagged, 10% over IPv6.
Addresses come from a small ThoughtSpot-like site (nodes, admins, users) plus
outside hosts, so `portmatrix check` finds allowed traffic and violations.

    python benchmarks/gen_capture.py OUT.pcap --packets 1000000 [--flows 60000]
        [--format pcap|pcapng] [--seed 1] [--start EPOCH] [--span SECONDS]

Flows start within `--span` seconds (60) of `--start` (2024-03-01T10:00:00Z);
each flow's packets follow 50 µs to 2 ms apart.
"""

from __future__ import annotations

import argparse
import gzip
import struct
import sys
import time

import numpy as np

NODES = [0x0A140000 + 11 + i for i in range(6)]  # 10.20.0.11-16
ADMINS = [0x0A1E0005, 0x0A1E0006]  # 10.30.0.5-6
USERS = [0x0A280000 + i for i in range(1, 2000)]  # 10.40.x.x
NTP_SERVER = 0x0A32007B  # 10.50.0.123
OUTSIDE = [0xC6336400 + i for i in range(1, 200)]  # 198.51.100.x
NODE_PORTS = [2100, 2181, 2200, 2888, 3888, 4000, 4021, 4232, 5432, 8020, 8080, 11211]
SEED_START = 1_709_287_200  # 2024-03-01T10:00:00Z


def plan_flows(rng: np.random.Generator, n_flows: int):
    """Per flow: kind (0 tcp, 1 udp, 2 icmp), endpoints, ports, packet count, vlan, v6."""
    kind = rng.choice(3, size=n_flows, p=[0.70, 0.25, 0.05])
    who = rng.choice(4, size=n_flows, p=[0.55, 0.05, 0.35, 0.05])  # node, admin, user, out
    src = np.where(
        who == 0,
        rng.choice(NODES, n_flows),
        np.where(
            who == 1,
            rng.choice(ADMINS, n_flows),
            np.where(who == 2, rng.choice(USERS, n_flows), rng.choice(OUTSIDE, n_flows)),
        ),
    )
    dst = rng.choice(NODES, n_flows)
    # Mostly allowed traffic; a few percent of violations (8443, users on 22).
    outside = rng.choice([443, 80, 8443, 22], n_flows, p=[0.6, 0.34, 0.04, 0.02])
    dport = np.where(who == 0, rng.choice(NODE_PORTS, n_flows), outside)
    dport = np.where(who == 1, 22, dport)
    # UDP: nodes asking the site's NTP server (and a little syslog to it: a violation);
    # ICMP: node-to-node health checks.
    src = np.where(kind != 0, rng.choice(NODES, n_flows), src)
    dst = np.where(kind == 1, NTP_SERVER, dst)
    dport = np.where(kind == 1, rng.choice([123, 514], n_flows, p=[0.97, 0.03]), dport)
    sport = rng.integers(32768, 61000, n_flows)
    return kind, src, dst, sport, dport


def build(packets: int, flows: int, seed: int, start_s: float = SEED_START, span_s: float = 60):
    rng = np.random.default_rng(seed)
    kind, src, dst, sport, dport = plan_flows(rng, flows)
    # Packets per flow: TCP gets the bulk, sized so the total is close to `packets`.
    udp_icmp = (kind != 0).sum() * 2
    tcp_n = (kind == 0).sum()
    if packets < udp_icmp + 7 * tcp_n:
        raise SystemExit(f"{packets} packets are too few for {flows} flows (TCP needs 7 each)")
    per_tcp = max(7, (packets - udp_icmp) // max(tcp_n, 1))
    count = np.where(kind == 0, rng.integers(7, 2 * per_tcp - 6, flows), 2)
    count[kind == 0] = np.maximum(7, count[kind == 0])
    scale = packets / count.sum()
    count[kind == 0] = np.maximum(7, (count[kind == 0] * scale).astype(np.int64))
    diff = packets - count.sum()
    count[np.flatnonzero(kind == 0)[0]] += diff
    total = int(count.sum())
    flow = np.repeat(np.arange(flows), count)
    first = np.r_[0, np.cumsum(count)[:-1]]
    idx = np.arange(total) - first[flow]  # packet index within its flow
    last = count[flow] - 1
    # Direction: even index from the client, odd from the server (close enough).
    reply = (idx % 2) == 1
    k = kind[flow]
    # TCP flags: SYN, SYN-ACK, ACK, data (PSH-ACK), ..., FIN-ACK, FIN-ACK, ACK.
    flags = np.full(total, 0x18, np.uint8)
    flags[(idx == 0)] = 0x02
    flags[(idx == 1)] = 0x12
    flags[(idx == 2)] = 0x10
    flags[(idx == last - 2) & (idx > 2)] = 0x11
    flags[(idx == last - 1) & (idx > 2)] = 0x11
    flags[(idx == last) & (idx > 2)] = 0x10
    reply = np.where(
        k == 0, np.where(idx == last - 1, True, np.where(idx == last, False, reply)), reply
    )
    start = int(start_s * 1_000_000) + rng.integers(0, max(1, int(span_s * 1e6)), flows)  # µs
    ts = start[flow] + idx * rng.integers(50, 2000, total)
    payload = np.where(
        k == 0,
        np.where((flags & 0x08) != 0, rng.integers(40, 740, total), 0),
        np.where(k == 1, rng.integers(30, 300, total), 56),
    )
    vlan = (flow % 10) == 3
    v6 = (flow % 10) == 7
    order = np.argsort(ts, kind="stable")
    return dict(
        ts=ts[order],
        flow=flow[order],
        k=k[order],
        reply=reply[order],
        flags=flags[order],
        payload=payload[order],
        vlan=vlan[order],
        v6=v6[order],
        flows=dict(src=src, dst=dst, sport=sport, dport=dport),
    )


def _be(value: np.ndarray, size: int) -> list[np.ndarray]:
    """The `size` big-endian bytes of each value, most significant first."""
    value = np.asarray(value, dtype=np.uint64)
    return [
        ((value >> np.uint64(8 * (size - 1 - i))) & np.uint64(0xFF)).astype(np.uint8)
        for i in range(size)
    ]


def _put(hdr: np.ndarray, sel: np.ndarray, col: int, value, size: int) -> None:
    value = np.broadcast_to(np.asarray(value, dtype=np.uint64), sel.shape)[sel]
    for i, byte in enumerate(_be(value, size)):
        hdr[sel, col + i] = byte


def packet_headers(p) -> tuple[np.ndarray, np.ndarray]:
    """Link + IP + transport header bytes of every packet (n x 80) and their lengths.

    Payloads are zeros, so only headers need building; each header layout
    (VLAN or not, IPv4 or IPv6, TCP/UDP/ICMP) is written column by column.
    """
    k, v6, vlan, r = p["k"], p["v6"], p["vlan"], p["reply"]
    n = len(k)
    f = p["flow"]
    fl = p["flows"]
    a_ip, b_ip = fl["src"][f], fl["dst"][f]
    a_port, b_port = fl["sport"][f], fl["dport"][f]
    s_ip, d_ip = np.where(r, b_ip, a_ip), np.where(r, a_ip, b_ip)
    s_port, d_port = np.where(r, b_port, a_port), np.where(r, a_port, b_port)
    l4 = np.where(k == 0, 20, 8)
    l3 = np.where(v6, 40, 20)
    eth = np.where(vlan, 18, 14)
    hdr = np.zeros((n, 80), np.uint8)
    every = np.ones(n, bool)
    _put(hdr, every, 0, 0x020000000001, 6)
    _put(hdr, every, 6, 0x020000000002, 6)
    _put(hdr, vlan, 12, 0x8100, 2)
    _put(hdr, vlan, 14, 20, 2)
    proto = np.select([k == 0, k == 1], [6, 17], np.where(v6, 58, 1))
    ip_len = l3 + l4 + p["payload"]
    for tagged in (False, True):
        e = 18 if tagged else 14
        for six in (False, True):
            sel = (vlan == tagged) & (v6 == six)
            _put(hdr, sel, e - 2, 0x86DD if six else 0x0800, 2)
            if six:
                _put(hdr, sel, e, 0x60, 1)
                _put(hdr, sel, e + 4, ip_len - 40, 2)
                _put(hdr, sel, e + 6, proto, 1)
                _put(hdr, sel, e + 7, 64, 1)
                for at, addr in ((e + 8, s_ip), (e + 24, d_ip)):
                    _put(hdr, sel, at, 0xFD00, 2)  # fd00::a.b.c.d
                    _put(hdr, sel, at + 12, addr, 4)
            else:
                _put(hdr, sel, e, 0x45, 1)
                _put(hdr, sel, e + 2, ip_len, 2)
                _put(hdr, sel, e + 8, 64, 1)
                _put(hdr, sel, e + 9, proto, 1)
                _put(hdr, sel, e + 12, s_ip, 4)
                _put(hdr, sel, e + 16, d_ip, 4)
            t = e + (40 if six else 20)
            ported = sel & (k != 2)
            _put(hdr, ported, t, s_port, 2)
            _put(hdr, ported, t + 2, d_port, 2)
            tcp = sel & (k == 0)
            _put(hdr, tcp, t + 4, (f * 7919) & 0xFFFFFFFF, 4)
            _put(hdr, tcp, t + 12, 0x50, 1)
            _put(hdr, tcp, t + 13, p["flags"], 1)
            udp = sel & (k == 1)
            _put(hdr, udp, t + 4, 8 + p["payload"], 2)
            icmp = sel & (k == 2)
            echo = np.where(six, np.where(r, 129, 128), np.where(r, 0, 8))
            _put(hdr, icmp, t, echo, 1)
            _put(hdr, icmp, t + 4, f & 0xFFFF, 2)
    return hdr, eth + l3 + l4


def write_capture(path: str, fmt: str, p, slice_size: int = 1_000_000) -> int:
    """Write all packets, a slice at a time (memory stays bounded for 10M packets)."""
    n = len(p["ts"])
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(file_header(fmt))
        for lo in range(0, n, slice_size):
            part = {k: (v if k == "flows" else v[lo : lo + slice_size]) for k, v in p.items()}
            fh.write(memoryview(records(fmt, part)))
    return n


def file_header(fmt: str) -> bytes:
    if fmt == "pcap":
        return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    return (
        struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1)
        + struct.pack("<I", 28)
        + struct.pack("<IIHHI", 1, 20, 1, 0, 262144)
        + struct.pack("<I", 20)
    )


def records(fmt: str, p) -> np.ndarray:
    """Records = record header + packet header bytes + zero payload."""
    hdr, hlen = packet_headers(p)
    length = hlen + p["payload"]
    n = len(length)
    ts = p["ts"].astype(np.uint64)
    if fmt == "pcap":
        rec = np.zeros((n, 16), np.uint8)
        for col, value in (
            (0, ts // np.uint64(1_000_000)),
            (4, ts % np.uint64(1_000_000)),
            (8, length),
            (12, length),
        ):
            rec[:, col : col + 4] = np.asarray(value, "<u4").view(np.uint8).reshape(n, 4)
        size = 16 + length
    else:
        padded = (length + 3) & ~3
        size = 32 + padded
        rec = np.zeros((n, 28), np.uint8)
        for col, value in (
            (0, np.full(n, 6)),
            (4, size),
            (8, np.zeros(n)),
            (12, ts >> np.uint64(32)),
            (16, ts & np.uint64(0xFFFFFFFF)),
            (20, length),
            (24, length),
        ):
            rec[:, col : col + 4] = np.asarray(value, "<u4").view(np.uint8).reshape(n, 4)
    starts = np.r_[0, np.cumsum(size)[:-1]]
    out = np.zeros(int(size.sum()), np.uint8)
    width = rec.shape[1]
    for col in range(width):
        out[starts + col] = rec[:, col]
    for col in range(hdr.shape[1]):
        sel = col < hlen
        out[starts[sel] + width + col] = hdr[sel, col]
    if fmt == "pcapng":
        trailer = np.asarray(size, "<u4").view(np.uint8).reshape(n, 4)
        for col in range(4):
            out[starts + size - 4 + col] = trailer[:, col]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--flows", type=int, default=60_000)
    ap.add_argument("--format", choices=("pcap", "pcapng"), default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=float, default=SEED_START, help="epoch seconds")
    ap.add_argument("--span", type=float, default=60, help="seconds in which flows start")
    args = ap.parse_args(argv)
    fmt = args.format or ("pcapng" if ".pcapng" in args.out else "pcap")
    t0 = time.perf_counter()
    p = build(args.packets, args.flows, args.seed, args.start, args.span)
    n = write_capture(args.out, fmt, p)
    print(
        f"wrote {n} packets, {args.flows} flows to {args.out} in {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
