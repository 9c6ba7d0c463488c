"""Write the scan-and-flood capture of issue 14 fast (numpy, as gen_capture.py).

Three things happen in the same 60 s on the synthetic site of gen_capture.py:

- a port scan: one user host (10.40.7.7) sends a SYN to every port 1-65535 on
  each of the six nodes; closed ports answer RST, the ports the nodes listen on
  answer SYN-ACK and the scanner resets them (as `nmap -sS` does);
- a SYN flood: `--flood` spoofed sources (100.64.0.0/10, no role) each send one
  SYN to 10.20.0.11:443, unanswered;
- ordinary traffic underneath (gen_capture.build, `--background` packets).

By default 1.29M packets: 393,210 scan flows, 400,000 flood flows, 6,000
ordinary ones. Each event is one problem: a good report has a handful of
findings, not hundreds of thousands.

    python benchmarks/gen_scan.py OUT.pcap [--flood 400000] [--background 100000]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from gen_capture import NODES, SEED_START, build, write_capture

SCANNER = 0x0A280707  # 10.40.7.7, a user
OPEN = [22, 80, 443, 2100, 2181, 2200, 2888, 3888, 4000, 4021, 4232, 5432, 8020, 8080, 11211]
FLOOD_TARGET, FLOOD_PORT = NODES[0], 443
SYN, SYNACK, RST, RSTACK = 0x02, 0x12, 0x04, 0x14


def scan_and_flood(flood: int, background: int, seed: int):
    rng = np.random.default_rng(seed)
    bg = build(background, max(background // 16, 10), seed)
    nb = len(bg["flows"]["src"])
    # The scan: one flow per (node, port), SYN then RST-ACK, or SYN, SYN-ACK, RST.
    dst = np.repeat(np.array(NODES, np.int64), 65535)
    dport = np.tile(np.arange(1, 65536, dtype=np.int64), len(NODES))
    ns = len(dst)
    is_open = np.isin(dport, OPEN)
    per = np.where(is_open, 3, 2)
    flow = np.repeat(np.arange(ns), per)
    first = np.r_[0, np.cumsum(per)[:-1]]
    idx = np.arange(len(flow)) - first[flow]
    opened = is_open[flow]
    flags = np.select([idx == 0, opened & (idx == 1), idx == 1], [SYN, SYNACK, RSTACK], RST).astype(
        np.uint8
    )
    t0 = SEED_START * 1_000_000
    order = rng.permutation(ns)  # scanners shuffle their targets
    start = np.empty(ns, np.int64)
    start[order] = t0 + np.arange(ns) * (60_000_000 // ns)
    scan = dict(
        ts=start[flow] + idx * 200,
        flow=flow + nb,
        k=np.zeros(len(flow), np.int64),
        reply=idx == 1,
        flags=flags,
        payload=np.zeros(len(flow), np.int64),
        vlan=np.zeros(len(flow), bool),
        v6=np.zeros(len(flow), bool),
    )
    # The flood: one unanswered SYN from each spoofed source.
    src_flood = 0x64400000 + rng.choice(1 << 22, flood, replace=False)
    flood_pkts = dict(
        ts=t0 + np.sort(rng.integers(0, 60_000_000, flood)),
        flow=np.arange(flood) + nb + ns,
        k=np.zeros(flood, np.int64),
        reply=np.zeros(flood, bool),
        flags=np.full(flood, SYN, np.uint8),
        payload=np.zeros(flood, np.int64),
        vlan=np.zeros(flood, bool),
        v6=np.zeros(flood, bool),
    )
    flows = {
        "src": np.r_[bg["flows"]["src"], np.full(ns, SCANNER), src_flood],
        "dst": np.r_[bg["flows"]["dst"], dst, np.full(flood, FLOOD_TARGET)],
        "sport": np.r_[
            bg["flows"]["sport"], rng.integers(32768, 61000, ns), rng.integers(1024, 65535, flood)
        ],
        "dport": np.r_[bg["flows"]["dport"], dport, np.full(flood, FLOOD_PORT)],
    }
    parts = [{k: v for k, v in bg.items() if k != "flows"}, scan, flood_pkts]
    merged = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
    order = np.argsort(merged["ts"], kind="stable")
    out = {k: v[order] for k, v in merged.items()}
    out["flows"] = flows
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--flood", type=int, default=400_000)
    ap.add_argument("--background", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    t = time.perf_counter()
    p = scan_and_flood(args.flood, args.background, args.seed)
    n = write_capture(args.out, "pcapng" if ".pcapng" in args.out else "pcap", p)
    print(f"wrote {n} packets to {args.out} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
