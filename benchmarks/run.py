"""Speed and memory of `portmatrix check` next to tshark, on generated captures.

    python benchmarks/run.py speed   [--packets 1000000] [--runs 3] [--one-core]
    python benchmarks/run.py memory  [--max-packets 10000000]
    python benchmarks/run.py jobs    [--packets 5000000] [--files 8] [--runs 3]
    python benchmarks/run.py startup [--runs 5]
    python benchmarks/run.py decode  [--packets 1000000] [--runs 5]
    python benchmarks/run.py learn   [--packets 1000000] [--runs 3] [--one-core]
    python benchmarks/run.py findings [--runs 3]
    python benchmarks/run.py apps    [--packets 1000000] [--runs 3] [--one-core]
    python benchmarks/run.py flowlogs [--records 5000000] [--layout v5|default] [--one-core]

`speed` generates a 1M-packet capture as pcap, pcapng and pcap.gz (in
benchmarks/out/, reused when present), runs `portmatrix check` on each and
`tshark -q -z conv,tcp -z conv,udp` on the pcap, several times, and prints
medians, packets per second and the ratio. `--one-core` pins everything to
CPU 0 with taskset (the issue's "on one core"). `memory` prints peak RSS
against packets at a fixed flow count and against flows at a fixed packet
count. `startup` times `--help` and `check` on a 10-packet capture. `decode`
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
"""

from __future__ import annotations

import argparse
import os
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


def timed(cmd: list[str], one_core: bool = False) -> tuple[float, int]:
    """Wall seconds and peak RSS (kB) of one run of `cmd`."""
    if one_core:
        cmd = ["taskset", "-c", "0", *cmd]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({code}): {proc.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss


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
    n = args.packets
    pcap = generate(OUT / f"bench-{n}.pcap", n)
    pcapng = generate(OUT / f"bench-{n}.pcapng", n)
    gz = OUT / f"bench-{n}.pcap.gz"
    if not gz.exists():
        subprocess.run(f"gzip -1 -c {pcap} > {gz}", shell=True, check=True)
    rows = []
    for name, cmd in (
        ("portmatrix check pcap", check_cmd(pcap)),
        ("portmatrix check pcapng", check_cmd(pcapng)),
        ("portmatrix check pcap.gz", check_cmd(gz)),
        (
            "tshark conv tcp+udp (pcap)",
            ["tshark", "-q", "-z", "conv,tcp", "-z", "conv,udp", "-r", str(pcap)],
        ),
    ):
        if name.startswith("tshark") and not shutil.which("tshark"):
            continue
        runs = [timed(cmd, args.one_core) for _ in range(args.runs)]
        median = statistics.median(t for t, _ in runs)
        rss = max(r for _, r in runs)
        rows.append((name, median, rss))
        print(
            f"{name:30s} median {median:7.2f} s  {n / median / 1e6:5.2f} Mpkt/s  "
            f"peak RSS {rss / 1024:6.0f} MB  runs {' '.join(f'{t:.2f}' for t, _ in runs)}",
            flush=True,
        )
    times = dict((name, t) for name, t, _ in rows)
    if "tshark conv tcp+udp (pcap)" in times:
        ratio = times["tshark conv tcp+udp (pcap)"] / times["portmatrix check pcap"]
        print(f"portmatrix is {ratio:.1f}x faster than tshark on the same pcap")
    print(f"pcapng / pcap: {times['portmatrix check pcapng'] / times['portmatrix check pcap']:.2f}")


def memory(args) -> None:
    print("peak RSS vs packets (60,000 flows)")
    sizes = [1_000_000, 2_000_000, 5_000_000, 10_000_000]
    for n in [s for s in sizes if s <= args.max_packets]:
        path = generate(OUT / f"mem-p{n}.pcap", n, 60_000)
        t, rss = timed(check_cmd(path))
        print(f"  {n:>10,} packets  {rss / 1024:6.0f} MB  {t:6.2f} s", flush=True)
    print("peak RSS vs flows (2,000,000 packets)")
    for flows in (10_000, 60_000, 150_000, 250_000):
        path = generate(OUT / f"mem-f{flows}.pcap", 2_000_000, flows)
        t, rss = timed(check_cmd(path))
        print(f"  {flows:>10,} flows    {rss / 1024:6.0f} MB  {t:6.2f} s", flush=True)


def jobs(args) -> None:
    """A rolling capture: a generated pcap cut into files (editcap -c), read with
    --jobs 1 and with one job per CPU; flows spanning two files stay one flow.
    portmatrix starts no more processes than the input pays for (one per
    workers.PER_PROCESS bytes), so the line says how many it used."""
    from portmatrix.sources.workers import processes

    n = args.packets
    pcap = generate(OUT / f"bench-{n}.pcap", n)
    parts = OUT / f"rolling-{n}-{args.files}"
    if not parts.exists():
        parts.mkdir()
        per = -(-n // args.files)
        subprocess.run(["editcap", "-c", str(per), str(pcap), str(parts / "part.pcap")], check=True)
    files = sorted(str(p) for p in parts.glob("part*.pcap"))
    for j in (1, os.cpu_count() or 1):
        cmd = [*check_cmd(Path(files[0])), *files[1:], "--jobs", str(j)]
        runs = [timed(cmd)[0] for _ in range(args.runs)]
        median = statistics.median(runs)
        print(
            f"{len(files)} files, --jobs {j} ({processes(files, j)} processes): "
            f"median {median:5.2f} s  {n / median / 1e6:5.2f} Mpkt/s  "
            f"runs {' '.join(f'{t:.2f}' for t in runs)}",
            flush=True,
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
    m = sub.add_parser("memory")
    m.add_argument("--max-packets", type=int, default=10_000_000)
    j = sub.add_parser("jobs")
    j.add_argument("--packets", type=int, default=5_000_000)
    j.add_argument("--files", type=int, default=8)
    j.add_argument("--runs", type=int, default=3)
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
    }
    commands[args.what](args)


if __name__ == "__main__":
    main()
