"""Write a large synthetic capture fast (numpy, not scapy per packet).

A realistic mix: TCP sessions with handshake, data and teardown, UDP
request/response, ICMP echo, 10% of flows VLAN-tagged, 10% over IPv6.
Addresses come from a small ThoughtSpot-like site (nodes, admins, users) plus
outside hosts, so `portmatrix check` finds allowed traffic and violations.

    python benchmarks/gen_capture.py OUT.pcap --packets 1000000 [--flows 60000]
        [--format pcap|pcapng] [--seed 1]
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
OUTSIDE = [0xC6336400 + i for i in range(1, 200)]  # 198.51.100.x
NODE_PORTS = [2100, 2181, 2200, 2888, 3888, 4000, 4021, 4232, 5432, 8020, 8080, 11211]
SEED_START = 1_709_287_200  # 2024-03-01T10:00:00Z


def plan_flows(rng: np.random.Generator, n_flows: int):
    """Per flow: kind (0 tcp, 1 udp, 2 icmp), endpoints, ports, packet count, vlan, v6."""
    kind = rng.choice(3, size=n_flows, p=[0.70, 0.25, 0.05])
    who = rng.choice(4, size=n_flows, p=[0.55, 0.05, 0.35, 0.05])  # node, admin, user, out
    src = np.where(who == 0, rng.choice(NODES, n_flows),
                   np.where(who == 1, rng.choice(ADMINS, n_flows),
                            np.where(who == 2, rng.choice(USERS, n_flows),
                                     rng.choice(OUTSIDE, n_flows))))
    dst = rng.choice(NODES, n_flows)
    dport = np.where(who == 0, rng.choice(NODE_PORTS, n_flows),
                     rng.choice([22, 80, 443, 443, 443, 8443], n_flows))
    dport = np.where(kind == 1, rng.choice([53, 123, 514], n_flows), dport)
    sport = rng.integers(32768, 61000, n_flows)
    return kind, src, dst, sport, dport


def build(packets: int, flows: int, seed: int):
    rng = np.random.default_rng(seed)
    kind, src, dst, sport, dport = plan_flows(rng, flows)
    # Packets per flow: TCP gets the bulk, sized so the total is close to `packets`.
    udp_icmp = (kind != 0).sum() * 2
    tcp_n = (kind == 0).sum()
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
    reply = np.where(k == 0, np.where(idx == last - 1, True, np.where(idx == last, False,
                                                                       reply)), reply)
    start = SEED_START * 1_000_000 + rng.integers(0, 60_000_000, flows)  # µs, 60 s window
    ts = start[flow] + idx * rng.integers(50, 2000, total)
    payload = np.where(k == 0, np.where((flags & 0x08) != 0, rng.integers(40, 900, total), 0),
                       np.where(k == 1, rng.integers(30, 300, total), 56))
    vlan = (flow % 10) == 3
    v6 = (flow % 10) == 7
    order = np.argsort(ts, kind="stable")
    return dict(ts=ts[order], flow=flow[order], k=k[order], reply=reply[order],
                flags=flags[order], payload=payload[order], vlan=vlan[order], v6=v6[order],
                src=src, dst=dst, sport=sport, dport=dport)


def frames(p) -> tuple[np.ndarray, np.ndarray]:
    """Packet bytes for every packet: (buffer, offsets), built column by column."""
    k, v6, vlan = p["k"], p["v6"], p["vlan"]
    l4 = np.where(k == 0, 20, 8)
    l3 = np.where(v6, 40, 20)
    eth = np.where(vlan, 18, 14)
    length = eth + l3 + l4 + p["payload"]
    offsets = np.r_[0, np.cumsum(length)[:-1]]
    buf = np.zeros(int(length.sum()), np.uint8)
    f = p["flow"]
    a_ip, b_ip = p["src"][f], p["dst"][f]
    a_port, b_port = p["sport"][f], p["dport"][f]
    r = p["reply"]
    s_ip, d_ip = np.where(r, b_ip, a_ip), np.where(r, a_ip, b_ip)
    s_port, d_port = np.where(r, b_port, a_port), np.where(r, a_port, b_port)

    def put(pos, value, size):
        for i in range(size):
            buf[pos + i] = (value >> (8 * (size - 1 - i))) & 0xFF

    put(offsets, np.full(len(f), 0x020000000001), 6)
    put(offsets + 6, np.full(len(f), 0x020000000002), 6)
    o = offsets + 12
    put(o[vlan], np.full(vlan.sum(), 0x8100), 2)
    put(o[vlan] + 2, np.full(vlan.sum(), 20), 2)
    o = np.where(vlan, o + 4, o)
    put(o, np.where(v6, 0x86DD, 0x0800), 2)
    ip = o + 2
    proto = np.select([k == 0, k == 1], [6, 17], np.where(v6, 58, 1))
    ip_len = l3 + l4 + p["payload"]
    v4 = ~v6
    i4 = ip[v4]
    put(i4, np.full(v4.sum(), 0x45), 1)
    put(i4 + 2, ip_len[v4], 2)
    put(i4 + 8, np.full(v4.sum(), 64), 1)
    put(i4 + 9, proto[v4], 1)
    put(i4 + 12, s_ip[v4], 4)
    put(i4 + 16, d_ip[v4], 4)
    i6 = ip[v6]
    put(i6, np.full(v6.sum(), 0x60), 1)
    put(i6 + 4, ip_len[v6] - 40, 2)
    put(i6 + 6, proto[v6], 1)
    put(i6 + 7, np.full(v6.sum(), 64), 1)
    for base, addr in ((i6 + 8, s_ip[v6]), (i6 + 24, d_ip[v6])):
        put(base, np.full(v6.sum(), 0xFD00), 2)  # fd00::a.b.c.d
        put(base + 12, addr, 4)
    t = ip + l3
    icmp = k == 2
    ported = ~icmp
    put(t[ported], s_port[ported], 2)
    put(t[ported] + 2, d_port[ported], 2)
    tcp = k == 0
    put(t[tcp] + 4, (p["flow"][tcp] * 7919) & 0xFFFFFFFF, 4)
    put(t[tcp] + 12, np.full(tcp.sum(), 0x50), 1)
    put(t[tcp] + 13, p["flags"][tcp], 1)
    udp = k == 1
    put(t[udp] + 4, (8 + p["payload"][udp]), 2)
    ic = t[icmp]
    echo = np.where(v6[icmp], np.where(r[icmp], 129, 128), np.where(r[icmp], 0, 8))
    put(ic, echo, 1)
    put(ic + 4, p["flow"][icmp] & 0xFFFF, 2)
    return buf, offsets, length


def write_pcap(path: str, p, buf, offsets, length) -> None:
    n = len(offsets)
    ts = p["ts"]
    rec = np.zeros((n, 4), "<u4")
    rec[:, 0] = ts // 1_000_000
    rec[:, 1] = ts % 1_000_000
    rec[:, 2] = length
    rec[:, 3] = length
    _write_records(path, struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1),
                   rec.view(np.uint8).reshape(n, 16), buf, offsets, length, pad=False)


def write_pcapng(path: str, p, buf, offsets, length) -> None:
    n = len(offsets)
    shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    idb = struct.pack("<IIHHI", 1, 20, 1, 0, 262144) + struct.pack("<I", 20)
    padded = (length + 3) & ~3
    ts = p["ts"].astype(np.uint64)
    hdr = np.zeros((n, 7), "<u4")
    hdr[:, 0] = 6
    hdr[:, 1] = 32 + padded
    hdr[:, 2] = 0
    hdr[:, 3] = ts >> np.uint64(32)
    hdr[:, 4] = ts & np.uint64(0xFFFFFFFF)
    hdr[:, 5] = length
    hdr[:, 6] = length
    _write_records(path, shb + idb, hdr.view(np.uint8).reshape(n, 28), buf, offsets, length,
                   pad=True, trailer=32 + padded)


def _write_records(path, header, rec_hdr, buf, offsets, length, pad, trailer=None) -> None:
    """Interleave record headers and packet bytes into one array, then write it."""
    n = len(offsets)
    hsize = rec_hdr.shape[1]
    body = ((length + 3) & ~3) if pad else length
    size = hsize + body + (4 if pad else 0)
    starts = np.r_[0, np.cumsum(size)[:-1]]
    out = np.zeros(int(size.sum()), np.uint8)
    for i in range(hsize):
        out[starts + i] = rec_hdr[:, i]
    # Packet bytes: one fancy copy of every byte.
    within = np.arange(int(length.sum())) - np.repeat(offsets, length)
    out[np.repeat(starts + hsize, length) + within] = buf
    if pad:
        t = trailer.astype("<u4").view(np.uint8).reshape(n, 4)
        for i in range(4):
            out[starts + size - 4 + i] = t[:, i]
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(header)
        fh.write(out.tobytes())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--flows", type=int, default=60_000)
    ap.add_argument("--format", choices=("pcap", "pcapng"), default=None)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    fmt = args.format or ("pcapng" if ".pcapng" in args.out else "pcap")
    t0 = time.perf_counter()
    p = build(args.packets, args.flows, args.seed)
    buf, offsets, length = frames(p)
    (write_pcapng if fmt == "pcapng" else write_pcap)(args.out, p, buf, offsets, length)
    print(f"wrote {len(offsets)} packets, {args.flows} flows to {args.out} in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
