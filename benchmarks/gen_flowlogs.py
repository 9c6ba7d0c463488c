"""Write a day of synthetic AWS VPC flow logs fast (numpy columns, pyarrow's CSV writer).

The same ThoughtSpot-like site as gen_capture.py (site.inventory.yaml): nodes,
admins, users, an NTP server and outside hosts; TCP (70%), UDP (25%) and ICMP
(5%) connections, a few percent of violations and of REJECTed attempts. Each
connection is logged as AWS logs it: one record per direction per one-minute
window (Nitro), at the ENI of every logged endpoint (traffic between two nodes
shows up twice), with version 5 fields in a custom order and tcp-flags. Files
are gzip text with a header line, one per hour, in the S3 layout
(AWSLogs/<account>/vpcflowlogs/<region>/YYYY/MM/DD/), plus NODATA records.

    python benchmarks/gen_flowlogs.py OUT_DIR --records 5000000 [--layout v5|default] [--seed 1]

`--layout default` writes the version 2 default format (14 fields, no
tcp-flags: about half the bytes per record); `v5` (the default) 21 fields of
versions 2 to 5 in a custom order.
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_capture import plan_flows

DAY = 1_709_251_200  # 2024-03-01T00:00:00Z
ACCOUNT = "123456789012"
FIELDS = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "vpc-id",
    "subnet-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "flow-direction",
]


def _ip(values: np.ndarray) -> np.ndarray:
    """Dotted quads of IPv4 integers, each distinct address formatted once."""
    uniq, inverse = np.unique(values, return_inverse=True)
    text = np.array([f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}" for v in uniq])
    return text[inverse.reshape(-1)]


def records(n_records: int, seed: int) -> dict[str, np.ndarray]:
    """About `n_records` records: connections cut into one-minute windows, both ways,
    at the ENI of each endpoint that is a node."""
    rng = np.random.default_rng(seed)
    n_conn = max(1, n_records // 5)
    kind, src, dst, sport, dport = plan_flows(rng, n_conn)
    proto = np.choose(kind, [6, 17, 1])
    start = DAY + rng.integers(0, 86_400, n_conn)
    windows = np.minimum(rng.geometric(0.6, n_conn), 30)  # most connections: one window
    rejected = rng.random(n_conn) < 0.02
    conn = np.repeat(np.arange(n_conn), windows)
    k = np.arange(len(conn)) - np.repeat(np.cumsum(windows) - windows, windows)
    first_w, last_w = k == 0, k == np.repeat(windows, windows) - 1
    rej = rejected[conn]
    # One window, two directions (none back when rejected), at one or two ENIs.
    cols = []
    for back in (False, True):
        keep = ~(back & rej)
        c = conn[keep]
        fw, lw = first_w[keep], last_w[keep]
        pkts = rng.integers(1, 40, len(c))
        t0 = start[c] + 60 * k[keep]
        tcp = proto[c] == 6
        flags = np.where(fw, 18 if back else 2, 0) | np.where(lw, 1, 0)
        flags = np.where(rej[c], 2, flags)
        a, b = (dst[c], src[c]) if back else (src[c], dst[c])
        pa_, pb = (dport[c], sport[c]) if back else (sport[c], dport[c])
        icmp = proto[c] == 1
        base = {
            "src": a,
            "dst": b,
            "sport": np.where(icmp, 0, pa_),
            "dport": np.where(icmp, 0, pb),
            "proto": proto[c],
            "packets": pkts,
            "bytes": pkts * rng.integers(60, 1400, len(c)),
            "start": t0,
            "end": t0 + rng.integers(0, 60, len(c)),
            "action": np.where(rej[c], "REJECT", "ACCEPT"),
            "flags": np.where(tcp, flags, 0),
        }
        # At the ENI of the source and of the destination, where they are nodes.
        for end_, direction in (("src", "egress"), ("dst", "ingress")):
            node = (base[end_] >> 8) == 0x0A1400  # 10.20.0.x
            cols.append(
                {
                    **{k2: v[node] for k2, v in base.items()},
                    "eni": base[end_][node],
                    "direction": np.full(int(node.sum()), direction),
                }
            )
    out = {k: np.concatenate([c[k] for c in cols]) for k in cols[0]}
    order = np.argsort(out["start"], kind="stable")
    return {k: v[order] for k, v in out.items()}


LAYOUTS = {"v5": FIELDS, "default": FIELDS[:14]}


def table(rec: dict[str, np.ndarray], fields=FIELDS) -> pa.Table:
    n = len(rec["start"])
    src, dst = _ip(rec["src"]), _ip(rec["dst"])
    values = {
        "version": np.full(n, 5),
        "account-id": np.full(n, ACCOUNT),
        "interface-id": np.char.add("eni-0a1400", rec["eni"].astype(np.int64).astype(str)),
        "srcaddr": src,
        "dstaddr": dst,
        "srcport": rec["sport"],
        "dstport": rec["dport"],
        "protocol": rec["proto"],
        "packets": rec["packets"],
        "bytes": rec["bytes"],
        "start": rec["start"],
        "end": rec["end"],
        "action": rec["action"],
        "log-status": np.full(n, "OK"),
        "vpc-id": np.full(n, "vpc-0123456789abcdef0"),
        "subnet-id": np.full(n, "subnet-0123456789abcdef0"),
        "tcp-flags": rec["flags"],
        "type": np.full(n, "IPv4"),
        "pkt-srcaddr": src,
        "pkt-dstaddr": dst,
        "flow-direction": rec["direction"],
    }
    return pa.table({k: pa.array(values[k]) for k in fields})


def _nodata(start: int, fields=FIELDS) -> bytes:
    """A NODATA record: an interface that had no traffic in a window."""
    given = {"version": "5", "account-id": ACCOUNT, "interface-id": "eni-0a14000b"}
    given |= {"start": str(start), "end": str(start + 59), "log-status": "NODATA"}
    return (" ".join(given.get(f, "-") for f in fields) + "\n").encode()


def write_day(out: Path, n_records: int, seed: int = 1, layout: str = "v5") -> list[Path]:
    fields = LAYOUTS[layout]
    rec = records(n_records, seed)
    folder = out / "AWSLogs" / ACCOUNT / "vpcflowlogs" / "eu-west-1" / "2024" / "03" / "01"
    folder.mkdir(parents=True, exist_ok=True)
    hour = (rec["start"] - DAY) // 3600
    paths = []
    for h in range(24):
        sel = np.flatnonzero(hour == h)
        part = table({k: v[sel] for k, v in rec.items()}, fields)
        buf = io.BytesIO()
        pacsv.write_csv(
            part,
            buf,
            pacsv.WriteOptions(include_header=True, delimiter=" ", quoting_style="none"),
        )
        text = buf.getvalue().replace(b'"', b"")  # the header row is quoted by the writer
        text += _nodata(DAY + h * 3600, fields)
        stamp = f"20240301T{h:02d}00Z"
        path = folder / f"{ACCOUNT}_vpcflowlogs_eu-west-1_fl-0a1b2c3d_{stamp}_{seed:08x}.log.gz"
        path.write_bytes(gzip.compress(text, compresslevel=6))
        paths.append(path)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--records", type=int, default=5_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--layout", choices=sorted(LAYOUTS), default="v5")
    args = ap.parse_args()
    t = time.perf_counter()
    paths = write_day(args.out, args.records, args.seed, args.layout)
    size = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} files, {size / 1e6:.1f} MB, in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
