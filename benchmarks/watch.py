"""`portmatrix watch` without a network card: its tick, its own ceiling, a flood.

    python benchmarks/watch.py tick    [--flows 500000] [--runs 20]
    python benchmarks/watch.py ceiling [--packets 5000000] [--runs 3]
    python benchmarks/watch.py flood   [--sources 500000]

`tick` fills a Watcher with `--flows` live flows (a generated capture whose
flows all start within one second) and ten older half-open ones, then times a
tick that ends those ten, and ticks with nothing to end (median of `--runs`).

`ceiling` points `watch --dumpcap` at a stand-in that streams a generated
pcapng `--loops` times (each time as a new section whose if_tsoffset moves the
timestamps on, from the present: flows live and end as on a real link) as fast
as a pipe allows; watch is pinned to CPU 0 and the stand-in to CPU 1. It
prints packets per second over the stream (per second of watch's own CPU time,
and of wall time), and watch's RSS sampled every 0.2 s: the peak of the first
third against the last third shows whether memory stays flat.

`flood` streams gen_scan.py's capture (a SYN flood from `--sources` spoofed
sources, one SYN each; a port scan of six nodes; ordinary traffic underneath)
`--loops` times the same way, with a `--duration` shorter than the stream:
peak RSS, the findings and NEW lines, and how long after its duration watch
had stopped and written its report.

Every line carries the load average: the machine is shared, and wall times
mean little without it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
INVENTORY = HERE / "site.inventory.yaml"
PYTHON = sys.executable
PORTMATRIX = str(Path(PYTHON).parent / "portmatrix")
SECOND = 1_000_000_000
BASE = 1_709_287_200  # gen_capture's start: the stand-in shifts it to the present


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def generate(path: Path, *args: str) -> Path:
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        subprocess.run([PYTHON, str(HERE / "gen_capture.py"), str(path), *args], check=True)
    return path


# tick -----------------------------------------------------------------------------


def tick(args) -> None:
    from scapy.layers.inet import TCP

    from portmatrix.decode import decode
    from portmatrix.policy.inventory import load_inventory
    from portmatrix.policy.matrix import load_matrix
    from portmatrix.sources.capture import Capture
    from portmatrix.testing.captures import ether, ip, raw_batch
    from portmatrix.watch.watcher import Watcher

    n = args.flows
    path = generate(
        OUT / f"tick-{n}.pcapng",
        *("--packets", str(6 * n), "--flows", str(n), "--span", "1", "--format", "pcapng"),
    )
    matrix = load_matrix(["thoughtspot"])
    w = Watcher(matrix, load_inventory(str(INVENTORY), matrix))
    old = [
        ether(ip("10.40.0.9", "10.20.0.11") / TCP(sport=50000 + i, dport=22, flags="S"))
        for i in range(10)
    ]
    w.add(*decode(raw_batch(old, start=(BASE - 200) * SECOND)))
    for raw in Capture(str(path)).batches():
        w.add(*decode(raw))
    w.table.changed()  # judged once: the ticks below have nothing new to judge
    w.tick((BASE - 300) * SECOND)  # the first tick puts every flow on the timer wheel
    now = (BASE + 3) * SECOND  # two seconds after the last flow began
    start = time.perf_counter()
    w.tick(now)
    ending = time.perf_counter() - start
    print(f"{w.active:,} live flows, {w.flows_done} ended; {load()}")
    print(f"tick ending {w.flows_done} of {w.active + w.flows_done:,}: {ending * 1e3:8.2f} ms")
    runs = []
    for k in range(args.runs):
        start = time.perf_counter()
        events = w.tick(now + (k + 1) * SECOND // 10)
        runs.append(time.perf_counter() - start)
        assert not events
    print(
        f"tick with nothing to end:  median {statistics.median(runs) * 1e3:6.2f} ms, "
        f"max {max(runs) * 1e3:6.2f} ms over {args.runs} ticks ({w.active:,} live flows)"
    )


# ceiling and flood: a stand-in dumpcap --------------------------------------------

STAND_IN = """\
#!{python}
# dumpcap's stand-in: -D lists eth0; a capture streams {capture} {loops} times as
# fast as the pipe takes it, from CPU 1, each time as a new section whose interface
# block shifts the timestamps (if_tsoffset) to follow on from the last: a long,
# live-looking stream from one file.
import os, struct, sys, time
if "-D" in sys.argv:
    print("1. eth0")
    sys.exit(0)
try:
    os.sched_setaffinity(0, {{1}})
except OSError:
    pass
out = sys.stdout.buffer
offset = int(time.time()) + 1 - {base}
with open({capture!r}, "rb") as fh:
    shb_len = struct.unpack("<I", fh.read(8)[4:])[0]
    fh.seek(shb_len)
    skip = shb_len + struct.unpack("<I", fh.read(8)[4:])[0]
    for loop in range({loops}):
        shb = struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)
        opts = struct.pack("<HHq", 14, 8, offset + loop * {every}) + struct.pack("<HH", 0, 0)
        size = 20 + len(opts)
        idb = struct.pack("<IIHHI", 1, size, 1, 0, 262144) + opts + struct.pack("<I", size)
        out.write(shb + idb)
        fh.seek(skip)  # the file's own section header and interface block
        while chunk := fh.read(1 << 20):
            out.write(chunk)
out.flush()
"""


def stand_in(folder: Path, capture: Path, loops: int = 1, every: int = 0) -> Path:
    """`loops` times the capture, each `every` seconds after the one before."""
    script = folder / "dumpcap"
    script.write_text(
        STAND_IN.format(python=PYTHON, capture=str(capture), base=BASE, loops=loops, every=every)
    )
    script.chmod(0o755)
    return script


def run_watch(folder: Path, capture: Path, *extra: str, loops: int = 1, every: int = 0) -> dict:
    """Watch the stand-in's stream to its end, pinned to CPU 0: what it took."""
    report, log = folder / "report.json", folder / "watch.log"
    cmd = [
        "taskset",
        "-c",
        "0",
        PORTMATRIX,
        "watch",
        "-i",
        "eth0",
        "--dumpcap",
        str(stand_in(folder, capture, loops, every)),
        "--rules",
        "thoughtspot",
        "--inventory",
        str(INVENTORY),
        "--report-every",
        "5s",
        "--format",
        "json",
        "-o",
        str(report),
        *extra,
    ]
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        started = time.monotonic()
        rss, cpu_at = [], {}
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
                stat = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                break
            found = re.search(r"VmRSS:\s+(\d+)", status)
            if not found:  # exiting: its memory is gone already
                continue
            rss.append(int(found.group(1)) / 1024)
            cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
            text = log.read_text()
            if "watching" in text and "first" not in cpu_at:
                cpu_at["first"] = (time.monotonic(), cpu)
            cpu_at["last"] = (time.monotonic(), cpu)
            time.sleep(0.2)
    wall = time.monotonic() - started
    doc = json.loads(report.read_text())
    lines = log.read_text().splitlines()
    return {
        "packets": doc["summary"]["packets"],
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "stream_wall": cpu_at["last"][0] - cpu_at["first"][0] if "first" in cpu_at else wall,
        "stream_cpu": cpu_at["last"][1] - cpu_at["first"][1] if "first" in cpu_at else 0,
        "rss": rss,
        "findings": len(doc["findings"]),
        "kinds": [f["kind"] for f in doc["findings"]],
        "new_lines": sum(" NEW " in f" {line} " for line in lines),
        "log": lines,
    }


def ceiling(args) -> None:
    n = args.packets
    capture = generate(
        OUT / f"ceiling-{n}.pcapng",
        *("--packets", str(n), "--flows", str(n // 25), "--span", str(n / 1e6)),
        *("--format", "pcapng"),
    )
    span = round(n / 1e6)
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            # Flows end within the run (an idle timeout shorter than the stream's
            # time span), so the flow table reaches its steady size.
            r = run_watch(
                Path(tmp), capture, "--idle-timeout", "10s", loops=args.loops, every=span + 1
            )
        rss = r["rss"]
        third = max(1, len(rss) // 3)
        print(
            f"{r['packets']:,} packets: {r['packets'] / r['stream_cpu'] / 1e6:5.2f} Mpkt/s per "
            f"CPU second, {r['packets'] / r['stream_wall'] / 1e6:5.2f} Mpkt/s wall "
            f"(stream {r['stream_wall']:.1f} s, CPU {r['stream_cpu']:.1f} s; whole run "
            f"{r['wall']:.1f} s); RSS MB first third {max(rss[:third]):.0f}, last third "
            f"{max(rss[-third:]):.0f}, peak {max(rss):.0f}; {load()}",
            flush=True,
        )


def flood(args) -> None:
    capture = OUT / f"flood-{args.sources}.pcapng"
    if not capture.exists():
        OUT.mkdir(exist_ok=True)
        subprocess.run(
            [PYTHON, str(HERE / "gen_scan.py"), str(capture), "--flood", str(args.sources)],
            check=True,
            cwd=HERE,
        )
    with tempfile.TemporaryDirectory() as tmp:
        r = run_watch(
            Path(tmp), capture, "--duration", f"{args.duration}s", loops=args.loops, every=61
        )
    overrun = r["stream_wall"] - args.duration
    floods = r["kinds"].count("flood")
    print(
        f"{r['packets']:,} packets analysed of {args.loops} x {args.sources:,} spoofed SYNs "
        f"(and a port scan): peak RSS {max(r['rss']):.0f} MB, {r['findings']} findings, "
        f"{floods} of them floods, {r['new_lines']} NEW lines; --duration "
        f"{args.duration} s: ended {overrun:+.1f} s after it (report written); "
        f"{r['packets'] / r['stream_cpu'] / 1e6:.2f} Mpkt/s per CPU second; {load()}"
    )
    for line in r["log"]:
        if " NEW " in f" {line} " or "dropped" in line or "not analysed" in line:
            print("  ", line[:200])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("tick")
    t.add_argument("--flows", type=int, default=500_000)
    t.add_argument("--runs", type=int, default=20)
    c = sub.add_parser("ceiling")
    c.add_argument("--packets", type=int, default=5_000_000)
    c.add_argument("--runs", type=int, default=3)
    c.add_argument("--loops", type=int, default=6, help="times the capture is streamed")
    f = sub.add_parser("flood")
    f.add_argument("--sources", type=int, default=500_000)
    f.add_argument("--loops", type=int, default=8, help="times the flood is streamed")
    f.add_argument("--duration", type=int, default=6, help="watch's --duration, seconds")
    args = ap.parse_args()
    {"tick": tick, "ceiling": ceiling, "flood": flood}[args.what](args)


if __name__ == "__main__":
    main()
