"""`portmatrix watch` under load on a real interface: tcpreplay floods a veth pair
in a network namespace of its own (nothing else on the machine sees it, and
nothing else is in its count) while watch captures on the other end.

    sudo .venv/bin/python benchmarks/live.py rates [--rates 50000 100000 200000 0] [--seconds 10]
    sudo .venv/bin/python benchmarks/live.py soak  [--rate 0] [--minutes 30]

`rates` replays a generated capture at each rate (0: as fast as tcpreplay can)
for N seconds and prints packets sent, analysed and lost (watch's own count,
each packet once: sent = analysed + lost), watch's CPU time and peak RSS.

`soak` replays at one rate for `--minutes` while watch runs as a service would:
--state, --jsonl and --log; a third of the way in, the files are moved away and
watch gets SIGHUP (logrotate); half way, it is stopped (SIGTERM) and started
again on the same state. It prints RSS every 30 s, then per run: packets
analysed and lost, findings announced (the second run must announce none the
first did), and whether every log line and JSON line is in the moved or the new
file; and the packets sent while no watch ran (the restart). Needs root,
tcpreplay, dumpcap and iproute2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PYTHON = sys.executable
REPLAY = OUT / "replay-200k.pcap"
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def capture_for_replay() -> Path:
    if not REPLAY.exists():
        OUT.mkdir(exist_ok=True)
        subprocess.run(
            [PYTHON, str(HERE / "gen_capture.py"), str(REPLAY), "--packets", "200000"]
            + ["--flows", "12000"],
            check=True,
        )
    return REPLAY


def namespace():
    """A network namespace with a veth pair vA <-> vB, up, without IPv6 chatter."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from support.netns import veth_namespace

    return veth_namespace("pm-bench")


def start_watch(ns: str, folder: Path, *extra: str) -> tuple[subprocess.Popen, Path]:
    err = folder / f"stderr-{time.monotonic_ns()}.txt"
    cmd = [
        *("ip", "netns", "exec", ns, PYTHON, "-m", "portmatrix", "watch", "-i", "vB"),
        *("--rules", "thoughtspot", "--inventory", str(HERE / "site.inventory.yaml")),
        *("--report-every", "10s", "--idle-timeout", "30s", "--buffer-size", "64"),
        *("--format", "json", *extra),
    ]
    with open(err, "w") as fh:  # a file, not a pipe: thousands of lines must not block it
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=fh)
    for _ in range(300):
        if "watching" in err.read_text():
            break
        if proc.poll() is not None:
            raise SystemExit(f"watch did not start: {err.read_text()}")
        time.sleep(0.1)
    time.sleep(1.0)
    return proc, err


def replay(ns: str, pcap: Path, rate: int, seconds: float) -> subprocess.Popen:
    speed = ["--topspeed"] if rate == 0 else ["--pps", str(rate)]
    return subprocess.Popen(
        [
            *("ip", "netns", "exec", ns, "tcpreplay", "-i", "vA", *speed),
            *("--duration", str(int(seconds)), "--loop", "0", str(pcap)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def sent_by(player: subprocess.Popen) -> int:
    out, _ = player.communicate()
    found = re.search(r"Actual: (\d+) packets", out)
    if not found:
        raise SystemExit(f"tcpreplay failed: {out}")
    return int(found.group(1))


def sample(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS kB) of a running process."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return cpu, int(re.search(r"VmRSS:\s+(\d+)", status).group(1))


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)


def rates(args) -> None:
    pcap = capture_for_replay()
    print(f"{'rate':>9} {'sent':>10} {'analysed':>10} {'lost':>9} {'cpu s':>6} {'RSS MB':>7}")
    with namespace() as ns:
        for rate in args.rates:
            with tempfile.TemporaryDirectory() as tmp:
                report = Path(tmp) / "report.json"
                proc, _ = start_watch(ns, Path(tmp), "-o", str(report))
                player = replay(ns, pcap, rate, args.seconds)
                peak, cpu = 0, 0.0
                while player.poll() is None:
                    with contextlib.suppress(OSError, AttributeError):
                        cpu, rss = sample(proc.pid)
                        peak = max(peak, rss)
                    time.sleep(0.2)
                sent = sent_by(player)
                time.sleep(2)
                stop(proc)
                doc = json.loads(report.read_text())
            analysed, lost = doc["summary"]["packets"], doc["capture_health"]["drops"]
            label = "topspeed" if rate == 0 else f"{rate:,}"
            print(
                f"{label:>9} {sent:>10,} {analysed:>10,} {lost:>9,} {cpu:>6.1f} {peak / 1024:>7.0f}"
                f"   ({sent / args.seconds:,.0f} pkt/s offered; unaccounted "
                f"{sent - analysed - lost:+,}; {load()})",
                flush=True,
            )


def soak(args) -> None:
    pcap = capture_for_replay()
    seconds = args.minutes * 60
    with namespace() as ns, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = [
            *("--state", str(folder / "state.json"), "--jsonl", str(folder / "f.jsonl")),
            *("--log", str(folder / "w.log")),
        ]
        runs = []
        proc, err = start_watch(ns, folder, *files, "-o", str(folder / "r1.json"))
        player = replay(ns, pcap, args.rate, seconds)
        start = time.monotonic()
        rotated = restarted = False
        gap_started = gap = 0.0
        print(f"{'minutes':>7} {'RSS MB':>7} {'CPU s':>7}  ({load()})", flush=True)
        next_sample = 0.0
        while player.poll() is None:
            elapsed = time.monotonic() - start
            if elapsed >= next_sample:
                next_sample += 30
                with contextlib.suppress(OSError, AttributeError):
                    cpu, rss = sample(proc.pid)
                    print(
                        f"{elapsed / 60:7.1f} {rss / 1024:7.0f} {cpu:7.0f}  ({load()})", flush=True
                    )
            if not rotated and elapsed >= seconds / 3:
                rotated = True
                for name in ("f.jsonl", "w.log"):
                    (folder / name).rename(folder / f"{name}.1")
                proc.send_signal(signal.SIGHUP)
                print(f"{elapsed / 60:7.1f}  rotated the files, SIGHUP", flush=True)
            if not restarted and elapsed >= seconds / 2:
                restarted = True
                gap_started = time.monotonic()
                stop(proc)
                runs.append(err)
                proc, err = start_watch(ns, folder, *files, "-o", str(folder / "r2.json"))
                gap = time.monotonic() - gap_started
                print(f"{elapsed / 60:7.1f}  restarted on the same state ({gap:.1f} s)", flush=True)
            time.sleep(1)
        sent = sent_by(player)
        time.sleep(3)
        stop(proc)
        runs.append(err)
        _summarize(folder, runs, sent, seconds, gap)


def _summarize(folder: Path, runs: list[Path], sent: int, seconds: float, gap: float) -> None:
    analysed = lost = 0
    announced: list[set[str]] = []
    for k, (err, report) in enumerate(zip(runs, ("r1.json", "r2.json"), strict=True), 1):
        doc = json.loads((folder / report).read_text())
        lines = err.read_text().splitlines()
        ids = {m.group(1) for x in lines if (m := re.search(r" NEW \S+ .*? \[(PM-\w+)\]", x))}
        announced.append(ids)
        # The report of a resumed run counts since the first: this run's share.
        mine_a = doc["summary"]["packets"] - analysed
        mine_l = doc["capture_health"]["drops"] - lost
        analysed, lost = analysed + mine_a, lost + mine_l
        print(
            f"run {k}: analysed {mine_a:,}, lost {mine_l:,}; {len(ids)} findings announced; "
            f"report: {len(doc['findings'])} findings"
        )
    again = announced[1] & announced[0]
    print(f"announced again after the restart: {len(again)} {sorted(again)[:5]}")
    stamped = [x for err in runs for x in err.read_text().splitlines() if STAMP.match(x)]
    logged = []
    for name in ("w.log.1", "w.log"):
        logged += (folder / name).read_text().splitlines()
    print(
        f"log lines: {len(logged):,} in the files, {len(stamped):,} said; "
        f"the same: {logged == stamped}"
    )
    events = sum(len((folder / n).read_text().splitlines()) for n in ("f.jsonl.1", "f.jsonl"))
    told = sum(1 for x in stamped if re.match(r"\S+ (NEW|WORSE|RECOVERED) ", x))
    print(f"JSON lines: {events:,}; events said: {told:,}")
    print(
        f"sent {sent:,} in {seconds / 60:.0f} min ({sent / seconds:,.0f} pkt/s); analysed "
        f"{analysed:,} + lost {lost:,} = {analysed + lost:,}; not captured by either run "
        f"(the {gap:.1f} s restart and its start-up): {sent - analysed - lost:,}; {load()}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("rates")
    r.add_argument("--rates", type=int, nargs="+", default=[50_000, 100_000, 200_000, 0])
    r.add_argument("--seconds", type=int, default=10)
    s = sub.add_parser("soak")
    s.add_argument("--rate", type=int, default=0, help="packets per second; 0: top speed")
    s.add_argument("--minutes", type=float, default=30)
    args = ap.parse_args()
    {"rates": rates, "soak": soak}[args.what](args)


if __name__ == "__main__":
    main()
