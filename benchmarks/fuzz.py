"""The large fuzz run: tens of thousands of mutated captures, Zeek logs and cloud
flow logs, each through every command, with time and memory watched.

    python benchmarks/fuzz.py [--captures 10000] [--zeek 1000] [--flowlogs 3000]
                              [--seed 1000000] [--workers 2] [--limit-mb 500]
                              [--timeout 60] [--cli 200]

The cases are those of the CI fuzz test (`tests/support/fuzz.py`: the same
mutations, other seeds). Workers run the cases in-process, as
`fuzz.survive` does (check in every format, the flow table in every format,
check --flows, evidence read back), one after the other; after each case a
worker reports its outcome, its seconds and its peak RSS (`ru_maxrss`, which
only grows: the case that pushes it over `--limit-mb` is the one reported, and
the worker is restarted so the next cases start afresh). A case with no
answer after `--timeout` seconds is a hang (the worker is killed). Then
`--cli` cases run through the installed console script, each a process of its
own (`check` with every report and `--flows`, then `evidence`), with the exit
status checked (0, 1 or 2; never 3, the internal error) and the peak RSS of
every process measured.

Prints the counts (ok, one-line errors, failures, hangs, over the memory
limit), the slowest case and the largest peak, and every failing seed, which
reproduces its case:

    PYTHONPATH=tests python -c "from support import fuzz; \\
        open('case.pcap','wb').write(fuzz.mutate_capture(SEED))"
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
PYTHON = sys.executable
PORTMATRIX = str(Path(PYTHON).parent / "portmatrix")


def worker(kind: str, first: int, last: int, timeout: int) -> None:
    """Run cases first..last-1 of `kind`, one JSON line per case on stdout."""
    import signal
    import traceback

    sys.path.insert(0, str(TESTS))
    from support import fuzz

    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))  # never take the machine
    make = {
        "capture": fuzz.mutate_capture,
        "zeek": fuzz.mutate_zeek,
        "flowlog": fuzz.mutate_flowlog,
    }[kind]
    records = {"zeek": "zeek", "flowlog": "auto"}.get(kind)
    work = Path(tempfile.mkdtemp(prefix="pm-fuzz-"))
    path = work / {"capture": "case.pcap", "zeek": "conn.log", "flowlog": "flow.log"}[kind]

    def hung(signum, frame):
        raise TimeoutError(f"no result after {timeout} s")

    signal.signal(signal.SIGALRM, hung)
    for seed in range(first, last):
        path.write_bytes(make(seed))
        start = time.perf_counter()
        signal.alarm(timeout)
        try:
            outcome = fuzz.survive(str(path), work, records=records).split(":")[0]
            detail = ""
        except TimeoutError as exc:
            outcome, detail = "hang", str(exc)
        except Exception as exc:  # every failure is reported, with its seed
            where = traceback.extract_tb(exc.__traceback__)[-1]
            outcome = "failure"
            detail = f"{type(exc).__name__}: {exc} ({where.filename}:{where.lineno})"
        finally:
            signal.alarm(0)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        line = {"seed": seed, "outcome": outcome, "seconds": time.perf_counter() - start}
        print(json.dumps(line | {"peak_mb": peak, "detail": detail[:300]}), flush=True)


def run_kind(kind: str, first: int, count: int, workers: int, limit_mb: int, timeout: int):
    """Every case of `kind`, over `workers` processes; the per-case results."""
    import queue
    import threading

    results: list[dict] = []
    share = -(-count // workers)
    todo = [(lo, min(lo + share, first + count)) for lo in range(first, first + count, share)]
    lines: queue.Queue = queue.Queue()
    running: dict[int, list] = {}  # worker id -> [process, next seed, last seed + 1, since]

    def start(lo: int, hi: int) -> None:
        cmd = [PYTHON, __file__, "--worker", kind, str(lo), str(hi), str(timeout)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        running[proc.pid] = [proc, lo, hi, time.monotonic()]

        def pump() -> None:  # each worker's lines, as they come, then its end (None)
            for line in proc.stdout:
                lines.put((proc.pid, line))
            lines.put((proc.pid, None))

        threading.Thread(target=pump, daemon=True).start()

    def restart_after(pid: int, seed: int) -> None:
        proc, _, hi, _ = running.pop(pid)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if seed + 1 < hi:
            start(seed + 1, hi)

    for lo, hi in todo:
        start(lo, hi)
    done = 0
    while running:
        try:
            pid, line = lines.get(timeout=5)
        except queue.Empty:
            now = time.monotonic()
            for pid, (_, seed, _, since) in list(running.items()):
                if now - since > timeout + 30:  # stuck where no alarm reaches
                    results.append({"seed": seed, "outcome": "hang", "seconds": now - since})
                    restart_after(pid, seed)
            continue
        if pid not in running:
            continue  # a worker already given up
        proc, seed, hi, _ = running[pid]
        if line is None:  # the worker ended, or died on the case it was running
            if seed < hi:
                proc.wait()
                detail = f"worker died (exit {proc.returncode})"
                results.append({"seed": seed, "outcome": "failure", "detail": detail})
                restart_after(pid, seed)
            else:
                running.pop(pid)
            continue
        case = json.loads(line)
        results.append(case)
        running[pid][1], running[pid][3] = case["seed"] + 1, time.monotonic()
        done += 1
        if done % 1000 == 0:
            print(f"  {kind}: {done}/{count}", file=sys.stderr, flush=True)
        if case["peak_mb"] > limit_mb:
            case["outcome"] = "over-memory"
            restart_after(pid, case["seed"])
    return results


def cli_sample(count: int, seed: int, limit_mb: int) -> list[dict]:
    """`count` capture cases through the console script: exit statuses and the peak
    RSS of each process."""
    sys.path.insert(0, str(TESTS))
    from support import fuzz

    work = Path(tempfile.mkdtemp(prefix="pm-fuzz-cli-"))
    matrix, inventory = fuzz.site(work)
    out = []
    for k in range(count):
        case = work / "case.pcap"
        case.write_bytes(fuzz.mutate_capture(seed + k))
        runs = [
            [
                PORTMATRIX,
                "check",
                str(case),
                "--rules",
                matrix,
                "--inventory",
                inventory,
                *(
                    f"-o{work / f'r.{ext}'}"
                    for ext in ("txt", "md", "jsonl", "csv", "html", "json")
                ),
                "--flows",
                str(work / "flows.csv"),
            ],
            [PORTMATRIX, "flows", str(case), "--format", "csv"],
            [
                PORTMATRIX,
                "evidence",
                str(case),
                "--rules",
                matrix,
                "--inventory",
                inventory,
                "--verdict",
                "unexpected-port",
                "--verdict",
                "allowed",
                "-o",
                str(work / "ev.pcapng"),
            ],
        ]
        for cmd in runs:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            start = time.perf_counter()
            _, status, usage = os.wait4(proc.pid, 0)
            err = proc.stderr.read().decode("utf-8", "replace")
            code = os.waitstatus_to_exitcode(status)
            bad = code not in (0, 1, 2) or "Traceback" in err or "internal error" in err
            out.append(
                {
                    "seed": seed + k,
                    "command": cmd[1],
                    "exit": code,
                    "peak_mb": usage.ru_maxrss // 1024,
                    "seconds": time.perf_counter() - start,
                    "outcome": "failure"
                    if bad
                    else "over-memory"
                    if usage.ru_maxrss // 1024 > limit_mb
                    else ("error" if code == 2 else "ok"),  # exit 2: a one-line error
                    "detail": err.strip()[-300:] if bad else "",
                }
            )
    return out


def summary(name: str, results: list[dict]) -> None:
    counts: dict[str, int] = {}
    for r in results:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    slowest = max(results, key=lambda r: r.get("seconds", 0), default={})
    peak = max((r.get("peak_mb", 0) for r in results), default=0)
    print(
        f"{name}: {len(results)} cases: "
        + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        + f"; slowest {slowest.get('seconds', 0):.2f} s (seed {slowest.get('seed')}); "
        f"peak RSS {peak} MB"
    )
    for r in results:
        if r["outcome"] not in ("ok", "error"):
            print(f"  seed {r['seed']}: {r['outcome']} {r.get('detail', '')}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        kind, lo, hi, timeout = sys.argv[2], *map(int, sys.argv[3:6])
        worker(kind, lo, hi, timeout)
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--captures", type=int, default=10_000)
    ap.add_argument("--zeek", type=int, default=1_000)
    ap.add_argument("--flowlogs", type=int, default=3_000, help="AWS, Azure, GCP, Zeek logs")
    ap.add_argument("--seed", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit-mb", type=int, default=500)
    ap.add_argument("--timeout", type=int, default=60)
    ap.add_argument("--cli", type=int, default=200, help="capture cases through the CLI")
    args = ap.parse_args()
    started = time.monotonic()
    kinds = (("capture", args.captures), ("zeek", args.zeek), ("flowlog", args.flowlogs))
    failed = False
    for kind, count in kinds:
        if count:
            results = run_kind(kind, args.seed, count, args.workers, args.limit_mb, args.timeout)
            summary(f"{kind} cases (in-process)", results)
            failed |= any(r["outcome"] not in ("ok", "error") for r in results)
    if args.cli:
        results = cli_sample(args.cli, args.seed, args.limit_mb)
        summary("console script runs", results)
        failed |= any(r["outcome"] not in ("ok", "error") for r in results)
    print(f"{time.monotonic() - started:.0f} s in all")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
