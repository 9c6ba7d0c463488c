"""Stand-ins for dumpcap, so live capture runs without root or an interface.

`fake_dumpcap`: `-D` lists interfaces; capturing to `-w -` writes a capture file
to standard output, then waits to be stopped, as dumpcap does on a quiet link;
`-w FILE` (the ring) just waits. Every start appends its pid to a file, so a
test can check that no stand-in outlived the watch that started it.

`exiting_dumpcap`: writes its capture, says what it is told on standard error
and exits with the status it is told (a capture that ends, fails to start, or
dies); every start appends its arguments to a file.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

SCRIPT = """\
#!{python}
import os, signal, sys, time
with open({pids!r}, "a") as fh:
    fh.write(f"{{os.getpid()}}\\n")
args = sys.argv[1:]
if "-D" in args:
    print("1. lo\\n2. eth0 (span port)")
    sys.exit(0)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
if args[args.index("-w") + 1] == "-":
    with open({capture!r}, "rb") as fh:
        sys.stdout.buffer.write(fh.read())
    sys.stdout.buffer.flush()
while True:
    time.sleep(0.1)
"""


def fake_dumpcap(folder: Path, capture: Path) -> tuple[Path, Path]:
    """(path of the stand-in, file of the pids it started as) in `folder`."""
    script = folder / "dumpcap"
    pids = folder / "dumpcap.pids"
    script.write_text(SCRIPT.format(python=sys.executable, pids=str(pids), capture=str(capture)))
    script.chmod(0o755)
    return script, pids


def alive(pids_file: Path) -> list[int]:
    """The stand-ins started so far that still run."""
    if not pids_file.exists():
        return []
    out = []
    for pid in map(int, pids_file.read_text().split()):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        # A zombie is gone for our purpose only once reaped; ours are reaped by watch.
        state = (
            Path(f"/proc/{pid}/stat").read_text().split()[2]
            if Path(f"/proc/{pid}").exists()
            else "X"
        )
        if state != "Z":
            out.append(pid)
    return out


LISTING = "1. eth0\n2. lo (Loopback)\n3. any (Pseudo-device that captures on all interfaces)\n"


def exiting_dumpcap(folder: Path, capture: bytes = b"", stderr: str = "", status: int = 0) -> str:
    """Write `folder`/dumpcap: `-D` lists eth0, lo and any; a capture writes
    `capture` to standard output and `stderr`, then exits with `status`. Each
    run's arguments are appended to `folder`/args.txt. Returns its path."""
    (folder / "capture.bin").write_bytes(capture)
    script = folder / "dumpcap"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{folder}/args.txt"\n'
        f'if [ "$1" = "-D" ]; then printf "{LISTING}"; exit 0; fi\n'
        f'cat "{folder}/capture.bin"\n'
        f"printf '{stderr}' >&2\n"
        f"exit {status}\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)
