"""Time and peak memory of portmatrix on hostile inputs, each run as a process of
its own (the bounds are measured here, never asserted in the tests).

    python benchmarks/hostile.py [--only NAME ...] [--timeout 300] [--src DIR]

Inputs (built by `tests/support/hostile.py` into benchmarks/out/hostile/, reused):
pcapng interface, section and statistics storms (an interface description,
section header or statistics block before every packet), DNS responses whose
answers are chains of compression pointers, a pcap with a 0xFFFFFFFF snaplen
and a record claiming 4 GB followed by 1 GB (a sparse file), frames wrapped
past every depth limit, a SYN flood, YAML alias bombs and a 2 MB inventory,
and a Zeek log of NaNs, infinities and huge integers.

`--src DIR` runs another checkout's sources (e.g. /work/main/src) instead, for
a before/after comparison; a run longer than `--timeout` is stopped and
reported as such.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "hostile"
SITE = (str(OUT / "site" / "fuzz-matrix.yaml"), str(OUT / "site" / "fuzz-inventory.yaml"))


def _support():
    """tests/support's builders, imported only by the process that builds the
    inputs: the one that measures stays small (a child's peak RSS counts the
    parent's memory at the fork)."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from support import fuzz, hostile

    return fuzz, hostile


def _write(name: str, make) -> Path:
    path = OUT / name
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        data = make(_support()[1])
        if isinstance(data, str):
            data = data.encode()
        path.write_bytes(data)
    return path


def _sparse_huge_record() -> Path:
    path = OUT / "huge-record.pcap"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(_support()[1].huge_record_pcap(0))
            fh.truncate(1 << 30)  # 1 GB of zeros after the record's header, sparse
    return path


def _deep(hostile, count: int) -> bytes:
    from portmatrix.testing.captures import pcap_bytes

    frames = hostile.deep_frames()
    return pcap_bytes([frames[k % len(frames)] for k in range(count)])


def _big_inventory(hostile) -> str:
    lines = ["roles:", "  nodes:"]
    k = 0
    while sum(len(x) + 1 for x in lines) < (2 << 20) - 64:
        lines.append(f"    - 10.{k >> 16 & 255}.{k >> 8 & 255}.{k & 255}")
        k += 1
    return "\n".join(lines) + "\n  users: [10.0.2.0/24]\n"


def cases(site: tuple[str, str]) -> dict[str, tuple[Path, list[str]]]:
    """name -> (the hostile input, the command line that reads it)."""
    matrix, inventory = site
    check = ["--rules", matrix, "--inventory", inventory, "--format", "json"]
    captures = {
        "interface-storm-9k": ("iface-9k.pcapng", lambda h: h.interface_storm(9_000)),
        "interface-storm-100k": ("iface-100k.pcapng", lambda h: h.interface_storm(100_000)),
        "section-storm-100k": ("shb-100k.pcapng", lambda h: h.section_storm(100_000)),
        "statistics-storm-100k": ("isb-100k.pcapng", lambda h: h.statistics_storm(100_000)),
        "dns-pointers-250": ("dns-250.pcap", lambda h: h.dns_pointer_capture(250)),
        "dns-pointers-20k": ("dns-20k.pcap", lambda h: h.dns_pointer_capture(20_000)),
        "deep-encapsulation-200k": ("deep-200k.pcap", lambda h: _deep(h, 200_000)),
        "syn-flood-100k": ("synflood-100k.pcap", lambda h: h.syn_flood(100_000)),
    }
    out = {
        name: (_write(*made), ["check", str(_write(*made)), *check])
        for name, made in captures.items()
    }
    huge = _sparse_huge_record()
    out["huge-record-1GB"] = (huge, ["check", str(huge), *check])
    zeek = _write("zeek-100k.log", lambda h: h.zeek_log(100_000))
    out["zeek-hostile-100k"] = (zeek, ["check", "--zeek", str(zeek), *check])
    bomb = _write("bomb9.yaml", lambda h: h.alias_bomb())
    out["yaml-alias-bomb-9"] = (bomb, ["rules", "lint", str(bomb)])
    big = _write("inventory-2mb.yaml", _big_inventory)
    out["yaml-inventory-2MB"] = (big, ["rules", "lint", matrix, "--inventory", str(big)])
    return out


def run(args: list[str], src: str | None, timeout: float) -> tuple[str, float, int]:
    """(exit status or 'stopped', seconds, peak RSS MB) of `python -m portmatrix ARGS`."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "portmatrix", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    stopped = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - start > timeout:
            proc.kill()
            stopped = True
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    code = "stopped" if stopped else str(os.waitstatus_to_exitcode(status))
    err = proc.stderr.read().decode("utf-8", "replace").strip().splitlines()
    if code not in ("0", "1", "2", "stopped"):
        code += f" ({err[-1] if err else ''})"
    return code, seconds, usage.ru_maxrss // 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--src", default=None, help="run these sources (PYTHONPATH) instead")
    ap.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build:
        _support()[0].site(OUT / "site")
        cases(SITE)
        return
    subprocess.run([sys.executable, __file__, "--build"], check=True)  # inputs, once
    table = cases(SITE)
    print(f"{'input':26} {'size':>9} {'exit':>8} {'seconds':>8} {'peak MB':>8}")
    for name, (path, argv) in table.items():
        if args.only and name not in args.only:
            continue
        size = f"{path.stat().st_size / 1e6:.1f} MB"
        code, seconds, peak = run(argv, args.src, args.timeout)
        print(f"{name:26} {size:>9} {code:>8} {seconds:8.2f} {peak:8d}", flush=True)


if __name__ == "__main__":
    main()
