"""`portmatrix watch` under load: replay a capture onto loopback at fixed rates.

    sudo .venv/bin/python benchmarks/live.py rates [--rates 50000 200000 500000] [--seconds 10]
    sudo .venv/bin/python benchmarks/live.py soak [--rate 50000] [--minutes 30]

`rates` replays a generated capture with tcpreplay at each rate for N seconds
while `watch -i lo` runs, and prints packets sent, packets processed, capture
drops (dumpcap's statistics) and watch's CPU time; the highest rate with zero
drops and nothing lost is the one to quote. `soak` replays at a steady rate and
samples watch's RSS every 30 s: memory must stay flat. Needs root (capture and
replay on lo), tcpreplay (apt install tcpreplay) and dumpcap.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PYTHON = sys.executable
REPLAY = OUT / "replay-200k.pcap"


def capture_for_replay() -> Path:
    if not REPLAY.exists():
        OUT.mkdir(exist_ok=True)
        subprocess.run(
            [
                PYTHON,
                str(HERE / "gen_capture.py"),
                str(REPLAY),
                "--packets",
                "200000",
                "--flows",
                "12000",
            ],
            check=True,
        )
    return REPLAY


def start_watch(report: Path, seconds: float) -> subprocess.Popen:
    cmd = [
        PYTHON,
        "-m",
        "portmatrix",
        "watch",
        "-i",
        "lo",
        "--rules",
        "thoughtspot",
        "--inventory",
        str(HERE / "site.inventory.yaml"),
        "--duration",
        f"{seconds}s",
        "--report-every",
        "5s",
        "--idle-timeout",
        "30s",
        "--buffer-size",
        "256",
        "--filter",
        "not port 9107",
        "--format",
        "json",
        "--output",
        str(report),
    ]
    log = report.with_suffix(".log")
    with open(log, "w") as err:  # a file, not a pipe: thousands of lines must not block it
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    for _ in range(100):
        if "watching" in log.read_text():
            break
        if proc.poll() is not None:
            raise SystemExit(f"watch did not start: {log.read_text()}")
        time.sleep(0.1)
    time.sleep(1.5)
    return proc


def replay(pcap: Path, rate: int, seconds: float) -> int:
    """Packets tcpreplay sent."""
    out = subprocess.run(
        [
            "tcpreplay",
            "-i",
            "lo",
            "--pps",
            str(rate),
            "--duration",
            str(seconds),
            "--loop",
            "0",
            str(pcap),
        ],
        capture_output=True,
        text=True,
    )
    sent = re.search(r"Actual: (\d+) packets", out.stdout)
    if not sent:
        raise SystemExit(f"tcpreplay failed: {out.stdout}{out.stderr}")
    return int(sent.group(1))


def wait(proc: subprocess.Popen) -> tuple[float, int]:
    """CPU seconds (user + system) of the finished watch and its own peak RSS (kB).

    The peak is watch's VmHWM, sampled while it runs: the rusage maximum would be
    dumpcap's, whose capture buffer (--buffer-size) dwarfs everything else."""
    peak, cpu = 0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as fh:
                peak = max(peak, int(re.search(r"VmHWM:\s+(\d+)", fh.read()).group(1)))
            with open(f"/proc/{proc.pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        except (OSError, AttributeError, IndexError):
            pass
        time.sleep(0.1)
    return cpu, peak


def rates(args) -> None:
    pcap = capture_for_replay()
    print(
        f"{'rate':>9} {'sent':>10} {'processed':>10} {'lost':>8} {'drops':>7} "
        f"{'cpu s':>6} {'cpu %':>6} {'RSS MB':>7}"
    )
    for rate in args.rates:
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.json"
            proc = start_watch(report, args.seconds + 6)
            sent = replay(pcap, rate, args.seconds)
            cpu, rss = wait(proc)
            doc = json.loads(report.read_text())
        processed = doc["summary"]["packets"]
        drops = doc["capture_health"]["drops"]
        lost = max(0, sent - processed)
        print(
            f"{rate:>9,} {sent:>10,} {processed:>10,} {lost:>8,} {drops:>7,} "
            f"{cpu:>6.1f} {100 * cpu / (args.seconds + 6):>5.0f}% {rss / 1024:>7.0f}",
            flush=True,
        )


def soak(args) -> None:
    pcap = capture_for_replay()
    seconds = args.minutes * 60
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        proc = start_watch(report, seconds + 10)
        player = subprocess.Popen(
            [
                "tcpreplay",
                "-i",
                "lo",
                "--pps",
                str(args.rate),
                "--duration",
                str(seconds),
                "--loop",
                "0",
                str(pcap),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        start = time.monotonic()
        print("minutes  RSS MB")
        while player.poll() is None:
            with open(f"/proc/{proc.pid}/status") as fh:
                rss = int(re.search(r"VmRSS:\s+(\d+)", fh.read()).group(1))
            print(f"{(time.monotonic() - start) / 60:7.1f}  {rss / 1024:6.0f}", flush=True)
            time.sleep(30)
        cpu, peak = wait(proc)
        doc = json.loads(report.read_text())
        print(
            f"processed {doc['summary']['packets']:,} packets, drops "
            f"{doc['capture_health']['drops']}, peak RSS {peak / 1024:.0f} MB, "
            f"CPU {cpu:.0f} s"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("rates")
    r.add_argument("--rates", type=int, nargs="+", default=[50_000, 200_000, 500_000])
    r.add_argument("--seconds", type=int, default=10)
    s = sub.add_parser("soak")
    s.add_argument("--rate", type=int, default=50_000)
    s.add_argument("--minutes", type=int, default=30)
    args = ap.parse_args()
    {"rates": rates, "soak": soak}[args.what](args)


if __name__ == "__main__":
    main()
