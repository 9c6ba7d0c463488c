"""Speed and memory of `portmatrix check` next to tshark, on generated captures.

    python benchmarks/run.py speed   [--packets 1000000] [--runs 3] [--one-core] [--no-tshark]
    python benchmarks/run.py memory  [--max-packets 14000000] [--no-app]
    python benchmarks/run.py jobs    [--packets 1000000] [--files 8] [--runs 3] [--no-app]
    python benchmarks/run.py startup [--runs 5]
    python benchmarks/run.py decode  [--packets 1000000] [--runs 5]
    python benchmarks/run.py learn   [--packets 1000000] [--runs 3] [--one-core]
    python benchmarks/run.py findings [--runs 3]
    python benchmarks/run.py apps    [--packets 1000000] [--runs 3] [--one-core]
    python benchmarks/run.py flowlogs [--records 5000000] [--layout v5|default] [--one-core]
    python benchmarks/run.py names   [--flows 1000000] [--runs 3] [--one-core] [--no-check]

`speed` generates a 1M-packet capture as pcap, pcapng and pcap.gz (in
benchmarks/out/, reused when present), runs `portmatrix check` on each, nfdump's
`nfpcapd -r` (a C flow builder writing NetFlow) and `tshark -q -z conv,tcp -z
conv,udp` on the pcap, interleaved run by run, and prints medians of wall and
CPU time, each as a ratio of nfpcapd's, with the load average before and after.
`--one-core` pins everything to CPU 0 with taskset (the issue's "on one core").
`memory` prints peak RSS against flows up to 2M flows, nfpcapd's beside it,
and the bytes each added flow costs. `jobs` checks one file with one job on
one core against every core (the file cut into spans), end to end and the read
alone, a rolling capture likewise, and what a worker process costs.
`startup` times `--help` and `check` on a 10-packet capture. `decode`
times the decoder alone on the 1M-packet pcap's batches (read once, in memory):
the compiled fast path for common frames, and the numpy reference. `learn`
times `portmatrix learn` (alone, and with the vendor matrix as its base) next
to `check` on the same 1M-packet pcap, interleaved run by run: learning shares
check's reading, so it should cost about the same.
`findings` checks the scan-and-flood capture of issue 14 (gen_scan.py: a port
scan of six nodes and a SYN flood from 400,000 sources, 1.29M packets) beside
the normal 1M-packet capture, in the same run: time, peak RSS, findings and
JSON size of each, and `flows --format csv` against `check` on the normal one.
`flowlogs` generates a day of AWS VPC flow logs (gen_flowlogs.py) and times
the reader alone and `check --flowlog` end to end, in records per second.
`names` generates a capture whose every batch holds thousands of TLS hellos
naming a role's hostname (gen_names.py) and times the collecting of their
claims batch by batch alone (CPU seconds, the batches' claims in memory), the
same for a million claims in 200 to 5,000 batches, and `check --no-app` end to
end; run it with another install's python to compare.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
INVENTORY = HERE / "site.inventory.yaml"
PYTHON = sys.executable
PORTMATRIX = [str(Path(PYTHON).parent / "portmatrix")]  # the console script users run


def generate(path: Path, packets: int, flows: int = 60_000) -> Path:
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        subprocess.run(
            [
                PYTHON,
                str(HERE / "gen_capture.py"),
                str(path),
                "--packets",
                str(packets),
                "--flows",
                str(flows),
            ],
            check=True,
        )
    return path


class Run(tuple):
    """One measured run: wall seconds, CPU seconds (user + system, children too),
    peak RSS in kB and what it said on stderr."""

    wall = property(lambda self: self[0])
    cpu = property(lambda self: self[1])
    rss = property(lambda self: self[2])
    said = property(lambda self: self[3])


def measured(cmd: list[str], one_core: bool = False, ok=(0, 1)) -> Run:
    """Wall time, CPU time and peak RSS of one run of `cmd`."""
    if one_core:
        cmd = ["taskset", "-c", "0", *cmd]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    said = proc.stderr.read().decode(errors="replace")
    if code not in ok:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}): {said}")
    return Run((elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, said))


def timed(cmd: list[str], one_core: bool = False) -> tuple[float, int]:
    """Wall seconds and peak RSS (kB) of one run of `cmd`."""
    run = measured(cmd, one_core)
    return run.wall, run.rss


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def nfpcapd_cmd(capture: Path) -> list[str]:
    """nfdump's nfpcapd turning the capture into NetFlow files (one-way flow records,
    in C): the flow builder to beat. Its output goes to a fresh folder each run."""
    folder = OUT / "nfpcapd"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return ["nfpcapd", "-r", str(capture), "-w", str(folder)]


def side_by_side(cases: dict, runs: int, one_core: bool) -> dict[str, list[Run]]:
    """Every case run `runs` times, interleaved (a busy machine weighs on all alike),
    with the load average before and after."""
    print(load(), flush=True)
    out: dict[str, list[Run]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, cmd in cases.items():
            out[name].append(measured(cmd() if callable(cmd) else cmd, one_core))
    print(load(), flush=True)
    return out


def report(results: dict[str, list[Run]], packets: int, base: str | None = None) -> None:
    """Medians of wall and CPU time per case; with `base`, each as a ratio of it."""
    med = {n: (statistics.median(r.wall for r in rs), statistics.median(r.cpu for r in rs))
           for n, rs in results.items()}  # fmt: skip
    for name, runs in results.items():
        wall, cpu = med[name]
        ratio = ""
        if base and name != base:
            ratio = f"  x{wall / med[base][0]:4.2f} wall, x{cpu / med[base][1]:4.2f} CPU of {base}"
        print(
            f"{name:32s} wall {wall:6.2f} s  CPU {cpu:6.2f} s  {packets / wall / 1e6:5.2f} Mpkt/s  "
            f"peak RSS {max(r.rss for r in runs) / 1024:5.0f} MB{ratio}\n"
            f"{'':32s} runs (wall/CPU) {' '.join(f'{r.wall:.2f}/{r.cpu:.2f}' for r in runs)}",
            flush=True,
        )


def check_cmd(capture: Path) -> list[str]:
    return [
        *PORTMATRIX,
        "check",
        str(capture),
        "--rules",
        "thoughtspot",
        "--inventory",
        str(INVENTORY),
        "--format",
        "json",
        "--output",
        os.devnull,
    ]


def speed(args) -> None:
    """portmatrix check (pcap, pcapng, pcap.gz) side by side with nfdump's nfpcapd and
    tshark's conversation table on the same pcap, in the same run."""
    n = args.packets
    pcap = generate(OUT / f"bench-{n}.pcap", n)
    pcapng = generate(OUT / f"bench-{n}.pcapng", n)
    gz = OUT / f"bench-{n}.pcap.gz"
    if not gz.exists():
        subprocess.run(f"gzip -1 -c {pcap} > {gz}", shell=True, check=True)
    cases = {
        "portmatrix check pcap": check_cmd(pcap),
        "portmatrix check pcapng": check_cmd(pcapng),
        "portmatrix check pcap.gz": check_cmd(gz),
        # The flow builder's own comparison: no second read to label applications
        "portmatrix check pcap --no-app": [*check_cmd(pcap), "--no-app"],
    }
    if shutil.which("nfpcapd"):
        cases["nfpcapd (pcap)"] = lambda: nfpcapd_cmd(pcap)
    if shutil.which("tshark") and not args.no_tshark:
        cases["tshark conv tcp+udp (pcap)"] = [
            "tshark", "-q", "-z", "conv,tcp", "-z", "conv,udp", "-r", str(pcap)
        ]  # fmt: skip
    results = side_by_side(cases, args.runs, args.one_core)
    base = "nfpcapd (pcap)" if "nfpcapd (pcap)" in results else None
    report(results, n, base)
    wall = {k: statistics.median(r.wall for r in v) for k, v in results.items()}
    cpu = {k: statistics.median(r.cpu for r in v) for k, v in results.items()}
    pm = "portmatrix check pcap"
    print(f"pcapng / pcap: x{wall['portmatrix check pcapng'] / wall[pm]:.2f} wall, "
          f"x{cpu['portmatrix check pcapng'] / cpu[pm]:.2f} CPU (target <= 1.1)")  # fmt: skip
    print(f"pcap.gz / pcap: x{wall['portmatrix check pcap.gz'] / wall[pm]:.2f} wall, "
          f"x{cpu['portmatrix check pcap.gz'] / cpu[pm]:.2f} CPU (target <= 1.3)")  # fmt: skip
    if "tshark conv tcp+udp (pcap)" in wall:
        print(f"portmatrix / tshark: x{wall[pm] / wall['tshark conv tcp+udp (pcap)']:.3f} wall")


def memory(args) -> None:
    """Peak RSS against flows, to 2M flows: one process (`-j 1`, the flow table's own
    cost), every CPU (the file cut into spans: the largest of this process and its
    workers), and nfpcapd's on the same captures; the packets grow with the flows
    only as far as the generator needs them."""
    app = ["--no-app"] if args.no_app else []
    print(load())
    what = " ".join(["check", *app])
    print(f"peak RSS vs flows ({what} on one file; nfpcapd on the same capture)")
    heads = ("packets", "flows", "-j 1", "all CPUs", "nfpcapd", "-j 1 time")
    print(" ".join(f"{h:>{w}}" for h, w in zip(heads, (12, 10, 8, 9, 8, 10), strict=True)))
    base = None
    for packets, planned in MEMORY_SERIES:
        if packets > args.max_packets:
            continue
        path = generate(OUT / f"mem-p{packets}-f{planned}.pcap", packets, planned)
        one = measured([*check_cmd(path), "-j", "1", *app])
        every = measured([*check_cmd(path), *app])
        flows = int(re.search(r"(\d+) flows", one.said)[1])
        nf = measured(nfpcapd_cmd(path)) if shutil.which("nfpcapd") else None
        mb = one.rss / 1024
        line = (
            f"{packets:>12,} {flows:>10,} {mb:>5.0f} MB {every.rss / 1024:>6.0f} MB "
            f"{nf.rss / 1024 if nf else 0:>5.0f} MB {one.wall:>9.1f}s"
        )
        if base is None:
            base = (flows, mb)
        elif flows > base[0]:
            added = (mb - base[1]) * 2**20 / (flows - base[0])
            line += f"   -j 1: {added:4.0f} bytes per added flow"
        print(line, flush=True)
    print(load())


# (packets, flows the generator plans: a few percent become one flow by port reuse)
MEMORY_SERIES = (
    (1_000_000, 60_000),
    (2_000_000, 250_000),
    (5_000_000, 500_000),
    (10_000_000, 780_000),
    (14_000_000, 2_300_000),
)


READ_ONLY = """
import sys, time
from portmatrix.flows.from_captures import read_traffic
from portmatrix.sources import workers
if sys.argv[3] != "measured":
    workers.START = dict.fromkeys(workers.START, float(sys.argv[3]))
start = time.perf_counter()
traffic = read_traffic(sys.argv[1].split(","), jobs=int(sys.argv[2]))
print(time.perf_counter() - start, len(traffic.flows))
"""


def read_only(files: list[str], jobs: int, one_core: bool, start: str = "measured") -> float:
    """Seconds `read_traffic` alone takes (in a fresh process, imports not counted)."""
    cmd = [PYTHON, "-c", READ_ONLY, ",".join(files), str(jobs), start]
    if one_core:
        cmd = ["taskset", "-c", "0", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(out.split()[0])


def jobs(args) -> None:
    """One file, all cores: `check` on the 1M-packet pcap and pcapng with --jobs 1
    pinned to one CPU against --jobs N on every CPU (the file cut into spans), end
    to end and the read alone; then a rolling capture (the pcap cut into files with
    editcap -c) likewise; then what a worker process costs (a tiny file read with
    a worker forced on it, against without), the figure workers.START holds."""
    cpus = os.cpu_count() or 1
    n = args.packets
    pcap = generate(OUT / f"bench-{n}.pcap", n)
    pcapng = generate(OUT / f"bench-{n}.pcapng", n)
    parts = OUT / f"rolling-{n}-{args.files}"
    if not parts.exists():
        parts.mkdir()
        per = -(-n // args.files)
        subprocess.run(["editcap", "-c", str(per), str(pcap), str(parts / "part.pcap")], check=True)
    rolling = sorted(str(p) for p in parts.glob("part*.pcap"))
    print(load(), flush=True)
    for name, files in (("pcap", [str(pcap)]), ("pcapng", [str(pcapng)]), ("rolling", rolling)):
        app = ["--no-app"] if args.no_app else []
        one = [*check_cmd(Path(files[0])), *files[1:], "--jobs", "1", *app]
        many = [*check_cmd(Path(files[0])), *files[1:], "--jobs", str(cpus), *app]
        walls: dict[str, list[float]] = {k: [] for k in ("check 1", "check N", "read 1", "read N")}
        for _ in range(args.runs):  # interleaved
            walls["check 1"].append(measured(one, one_core=True).wall)
            walls["check N"].append(measured(many).wall)
            walls["read 1"].append(read_only(files, 1, one_core=True))
            walls["read N"].append(read_only(files, cpus, one_core=False))
        med = {k: statistics.median(v) for k, v in walls.items()}
        print(
            f"{name:8s} check: one core {med['check 1']:5.2f} s, {cpus} cores "
            f"{med['check N']:5.2f} s: x{med['check 1'] / med['check N']:.2f} | read alone: "
            f"{med['read 1']:5.2f} s, {med['read N']:5.2f} s: x{med['read 1'] / med['read N']:.2f}"
            f"\n{'':8s} runs {walls}",
            flush=True,
        )
    print(load(), flush=True)
    tiny = generate(OUT / "small-10.pcap", 10, 2)
    alone = [read_only([str(tiny)], 1, False) for _ in range(args.runs * 3)]
    forked = [read_only([str(tiny), str(tiny)], 2, False, start="0") for _ in range(args.runs * 3)]
    print(
        f"a worker costs {statistics.median(forked) - statistics.median(alone):.3f} s (fork; two "
        f"tiny files with a worker each, against one file alone: "
        f"{statistics.median(forked):.3f} s, {statistics.median(alone):.3f} s)"
    )


def startup(args) -> None:
    small = generate(OUT / "small-10.pcap", 10, 2)
    for name, cmd in (
        ("portmatrix --help", [*PORTMATRIX, "--help"]),
        ("portmatrix check (10 packets)", check_cmd(small)),
    ):
        runs = sorted(timed(cmd)[0] for _ in range(args.runs))
        print(f"{name:32s} median {statistics.median(runs):.3f} s  (min {runs[0]:.3f})")


def decode(args) -> None:
    """The decoder alone: every batch of the generated pcap decoded, per run."""
    from portmatrix.decode import decode as decode_batch
    from portmatrix.sources.capture import Capture

    n = args.packets
    pcap = generate(OUT / f"bench-{n}.pcap", n)
    batches = list(Capture(str(pcap)).batches())
    for name, fast in (("decode, fast path", True), ("decode, numpy only", False)):
        runs = []
        for _ in range(args.runs):
            start = time.perf_counter()
            for raw in batches:
                decode_batch(raw, fast=fast)
            runs.append(time.perf_counter() - start)
        median = statistics.median(runs)
        print(
            f"{name:20s} median {median:6.3f} s  {n / median / 1e6:6.2f} Mpkt/s  "
            f"runs {' '.join(f'{t:.3f}' for t in runs)}",
            flush=True,
        )


def learn_cmd(capture: Path, *extra: str) -> list[str]:
    return [
        *PORTMATRIX,
        "learn",
        str(capture),
        "--inventory",
        str(INVENTORY),
        "--output",
        os.devnull,
        "--quiet",
        *extra,
    ]


def learn(args) -> None:
    n = args.packets
    pcap = generate(OUT / f"bench-{n}.pcap", n)
    cases = (
        ("portmatrix check", check_cmd(pcap)),
        ("portmatrix learn", learn_cmd(pcap)),
        ("portmatrix learn --rules thoughtspot", learn_cmd(pcap, "--rules", "thoughtspot")),
    )
    runs: dict[str, list[tuple[float, int]]] = {name: [] for name, _ in cases}
    for _ in range(args.runs):  # interleaved: a busy machine weighs on all alike
        for name, cmd in cases:
            runs[name].append(timed(cmd, args.one_core))
    check = statistics.median(t for t, _ in runs["portmatrix check"])
    for name, results in runs.items():
        median = statistics.median(t for t, _ in results)
        rss = max(r for _, r in results)
        print(
            f"{name:38s} median {median:6.2f} s  {n / median / 1e6:5.2f} Mpkt/s  "
            f"x{median / check:4.2f} of check  peak RSS {rss / 1024:5.0f} MB  "
            f"runs {' '.join(f'{t:.2f}' for t, _ in results)}",
            flush=True,
        )


def apps(args) -> None:
    """Issue 19's cost: application labels of the flows behind the findings (a second
    read of the first packets of those flows, signatures, one tshark run) as what
    `check` takes more than `check --no-app`, interleaved run by run; and the
    columnar reading of client-given names (TLS SNI, HTTP Host, QUIC) alone, on the
    same capture's batches in memory, in CPU seconds."""
    import json
    import time

    from portmatrix.decode import decode, names
    from portmatrix.sources.capture import Capture

    n = args.packets
    pcap = generate(OUT / f"bench-{n}.pcap", n)
    report = OUT / "apps-report.json"
    labelled = check_cmd(pcap)
    labelled[labelled.index(os.devnull)] = str(report)
    cases = (("check (labels)", labelled), ("check --no-app", [*check_cmd(pcap), "--no-app"]))
    runs: dict[str, list[tuple[float, int]]] = {name: [] for name, _ in cases}
    for _ in range(args.runs):  # interleaved: a busy machine weighs on both alike
        for name, cmd in cases:
            runs[name].append(timed(cmd, args.one_core))
    doc = json.loads(report.read_text())
    behind = sum(sum(f["apps"].values()) for f in doc["findings"])
    labels: dict[str, int] = {}
    for f in doc["findings"]:
        for label, count in f["apps"].items():
            labels[label] = labels.get(label, 0) + count
    medians = {name: statistics.median(t for t, _ in r) for name, r in runs.items()}
    for name, results in runs.items():
        print(
            f"{name:18s} median {medians[name]:6.2f} s  peak RSS "
            f"{max(r for _, r in results) / 1024:5.0f} MB  "
            f"runs {' '.join(f'{t:.2f}' for t, _ in results)}"
        )
    added = medians["check (labels)"] - medians["check --no-app"]
    print(f"labels add {added:+.2f} s for {behind} flows behind {len(doc['findings'])} findings")
    print(f"labels: {labels}")
    batches = [(raw, decode(raw)[0]) for raw in Capture(str(pcap)).batches()]
    wanted = frozenset({"s3.us-west-1.amazonaws.com", "api.mixpanel.com"})
    for _ in range(args.runs):
        start = time.process_time()
        for raw, rows in batches:
            names.learn(raw, rows, wanted)
        print(f"client-given names, read alone: {time.process_time() - start:.2f} s CPU")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def findings(args) -> None:
    """Issue 14's targets: the scan capture within 3x the normal check's time, under
    500 MB, at most 100 findings and a JSON report under 20 MB; the flow export
    within 1.2x the check."""
    import json

    normal = generate(OUT / "bench-1000000.pcap", 1_000_000)
    scan = OUT / "scan-1290000.pcap"
    if not scan.exists():
        OUT.mkdir(exist_ok=True)
        subprocess.run([PYTHON, str(HERE / "gen_scan.py"), str(scan)], check=True, cwd=HERE)
    report = OUT / "findings-report.json"
    times = {}
    for name, capture in (("normal 1M", normal), ("scan+flood 1.29M", scan)):
        cmd = check_cmd(capture)
        cmd[cmd.index(os.devnull)] = str(report)
        runs = [timed(cmd) for _ in range(args.runs)]
        median = statistics.median(t for t, _ in runs)
        rss = max(r for _, r in runs)
        doc = json.loads(report.read_text(encoding="utf-8"))
        times[name] = median
        print(
            f"check {name:18s} median {median:6.2f} s  peak RSS {rss / 1024:5.0f} MB  "
            f"findings {len(doc['findings']):4d}  JSON {report.stat().st_size / 1e6:6.2f} MB  "
            f"runs {' '.join(f'{t:.2f}' for t, _ in runs)}",
            flush=True,
        )
    print(f"scan / normal: {times['scan+flood 1.29M'] / times['normal 1M']:.2f}x (target <= 3)")
    flows = [*PORTMATRIX, "flows", str(normal), "--format", "csv", "--output", os.devnull]
    runs = [timed(flows)[0] for _ in range(args.runs)]
    median = statistics.median(runs)
    print(
        f"flows --format csv normal 1M median {median:6.2f} s  runs "
        f"{' '.join(f'{t:.2f}' for t in runs)}"
    )
    print(f"flows csv / check: {median / times['normal 1M']:.2f}x (target <= 1.2)")


def flowlogs(args) -> None:
    """A day of AWS VPC flow logs (gen_flowlogs.py, gzip text in the S3 layout):
    records per second of the reader alone (in this process, CPU time, pinned to
    one core with --one-core) and of `portmatrix check --flowlog` end to end."""
    import glob

    sys.path.insert(0, str(HERE))
    from gen_flowlogs import write_day

    from portmatrix.records.formats import read_records

    folder = OUT / f"aws-day-{args.layout}-{args.records}"
    if not folder.exists():
        write_day(folder, args.records, layout=args.layout)
    paths = sorted(glob.glob(str(folder / "**" / "*.log.gz"), recursive=True))
    size = sum(os.path.getsize(p) for p in paths)
    if args.one_core and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    cpu, wall, records, flows = [], [], 0, 0
    for _ in range(args.runs):
        t, c = time.perf_counter(), time.process_time()
        traffic = read_records(paths, jobs=1)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
        records, flows = sum(i.frames for i in traffic.captures), len(traffic.flows)
    print(f"{len(paths)} files, {size / 1e6:.0f} MB gzip, {records} records -> {flows} flows")
    for name, times in (("reader, CPU", cpu), ("reader, wall", wall)):
        best = statistics.median(times)
        print(f"  {name:14} {best:6.2f} s  {records / best / 1e6:5.2f} M records/s")
    cmd = [
        *PORTMATRIX,
        "check",
        "--flowlog",
        str(folder),
        "--rules",
        "thoughtspot",
        "--inventory",
        str(INVENTORY),
        "--format",
        "json",
        "-o",
        "/dev/null",
        "-q",
    ]
    for label, extra in (("check -j 1", ["-j", "1"]), ("check -j all", [])):
        runs = [
            timed(cmd + extra, one_core=args.one_core and extra == ["-j", "1"])
            for _ in range(args.runs)
        ]
        best = statistics.median(r[0] for r in runs)
        rss = max(r[1] for r in runs) / 1024
        rate = records / best / 1e6
        print(f"  {label:14} {best:6.2f} s  {rate:5.2f} M records/s  peak {rss:.0f} MB")


def names(args) -> None:
    """Claims (decode.names) collected batch by batch: `Claims.add` alone, over the
    claims of a capture where clients name a role's hostname in every batch (read
    once into memory), and over a million synthetic claims cut into more and more
    batches (a longer capture, as many claims); then `check --no-app` end to end."""
    import numpy as np

    from portmatrix.decode import decode
    from portmatrix.decode import names as named
    from portmatrix.sources.capture import Capture

    def adding(parts) -> tuple[float, int]:
        start = time.process_time()
        total = named.Claims()
        for part in parts:
            total.add(part)
        return time.process_time() - start, len(total)

    capture = OUT / f"names-{args.flows}.pcap"
    if not capture.exists():
        OUT.mkdir(exist_ok=True)
        gen = [PYTHON, str(HERE / "gen_names.py"), str(capture), "--flows", str(args.flows)]
        subprocess.run(gen, check=True)
    wanted = frozenset({"api.mixpanel.com"})
    parts = []
    for raw in Capture(str(capture)).batches():
        rows, _ = decode(raw)
        parts.append(named.learn(raw, rows, wanted))
    print(f"{capture.name}: {len(parts)} batches, {sum(len(p) for p in parts)} claims")
    for _ in range(args.runs):
        spent, kept = adding(parts)
        print(f"Claims.add over the batches: {spent:.2f} s CPU ({kept} claims kept)")
    del parts
    for batches in (200, 1000, 5000):
        size = 1_000_000 // batches
        part = named.Claims(names=["api.mixpanel.com"])
        for col in (*named.Claims.COLUMNS, "name"):
            setattr(part, col, np.zeros(size, getattr(part, col).dtype))
        spent = min(adding([part] * batches)[0] for _ in range(args.runs))
        print(f"Claims.add of 1,000,000 claims in {batches} batches: {spent:.2f} s CPU (best)")
    if not args.no_check:
        runs = [
            measured([*check_cmd(capture), "--no-app"], args.one_core) for _ in range(args.runs)
        ]
        report({"check --no-app": runs}, 2 * args.flows)  # a hello and a bulk segment a flow
    print(load())


def compile_package() -> None:
    """Byte-compile portmatrix once, as `pip install` does: runs then time the tool,
    not the compiling of its sources (which PYTHONDONTWRITEBYTECODE, or an editable
    install in a read-only place, would otherwise repeat on every start)."""
    import portmatrix

    package = Path(portmatrix.__file__).parent
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(package)], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--packets", type=int, default=1_000_000)
    s.add_argument("--runs", type=int, default=3)
    s.add_argument("--one-core", action="store_true")
    s.add_argument("--no-tshark", action="store_true")
    m = sub.add_parser("memory")
    m.add_argument("--max-packets", type=int, default=14_000_000)
    m.add_argument("--no-app", action="store_true", help="check --no-app: flows alone")
    j = sub.add_parser("jobs")
    j.add_argument("--packets", type=int, default=1_000_000)
    j.add_argument("--files", type=int, default=8)
    j.add_argument("--runs", type=int, default=3)
    j.add_argument("--no-app", action="store_true", help="check --no-app: flows alone")
    st = sub.add_parser("startup")
    st.add_argument("--runs", type=int, default=5)
    d = sub.add_parser("decode")
    d.add_argument("--packets", type=int, default=1_000_000)
    d.add_argument("--runs", type=int, default=5)
    le = sub.add_parser("learn")
    le.add_argument("--packets", type=int, default=1_000_000)
    le.add_argument("--runs", type=int, default=3)
    le.add_argument("--one-core", action="store_true")
    ap_ = sub.add_parser("apps")
    ap_.add_argument("--packets", type=int, default=1_000_000)
    ap_.add_argument("--runs", type=int, default=3)
    ap_.add_argument("--one-core", action="store_true")
    fi = sub.add_parser("findings")
    fi.add_argument("--runs", type=int, default=3)
    f = sub.add_parser("flowlogs")
    f.add_argument("--records", type=int, default=5_000_000)
    f.add_argument("--layout", choices=("v5", "default"), default="v5")
    f.add_argument("--runs", type=int, default=3)
    f.add_argument("--one-core", action="store_true")
    na = sub.add_parser("names")
    na.add_argument("--flows", type=int, default=1_000_000)
    na.add_argument("--runs", type=int, default=3)
    na.add_argument("--one-core", action="store_true")
    na.add_argument("--no-check", action="store_true", help="Claims.add alone")
    args = ap.parse_args()
    compile_package()
    commands = {
        "speed": speed,
        "memory": memory,
        "jobs": jobs,
        "startup": startup,
        "decode": decode,
        "learn": learn,
        "findings": findings,
        "flowlogs": flowlogs,
        "apps": apps,
        "names": names,
    }
    commands[args.what](args)


if __name__ == "__main__":
    main()
