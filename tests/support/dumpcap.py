"""A stand-in for dumpcap (a shell script), so live capture's plumbing runs
without capture privileges. Capturing for real is tests/live's job."""

from __future__ import annotations

import stat
from pathlib import Path

LISTING = "1. eth0\n2. lo (Loopback)\n3. any (Pseudo-device that captures on all interfaces)\n"


def fake_dumpcap(folder: Path, capture: bytes = b"", stderr: str = "", status: int = 0) -> str:
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
