"""How many processes reading is worth: the CPUs this process may use, and enough
input to pay for starting each. Light (no numpy): the CLI reads it for defaults."""

from __future__ import annotations

import contextlib
import os

PER_PROCESS = 256 << 20  # bytes to decode that pay for a worker process (start-up, merge)


def usable_cpus() -> int:
    """CPUs this process may run on (taskset and cgroup pinning included, on Linux)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def processes(paths: list[str], jobs: int) -> int:
    """Worker processes for reading `paths` with at most `jobs`; 1 means read them
    here: when standard input is among them (a worker cannot read it), and when
    there is too little input to pay for more."""
    if jobs <= 1 or len(paths) <= 1 or "-" in paths:
        return 1
    return max(1, min(jobs, len(paths), decoded_size(paths) // PER_PROCESS))


def decoded_size(paths: list[str]) -> int:
    """Bytes of capture the files hold: a gzip file counts unpacked (its trailer
    says the size modulo 4 GiB; never less than the file itself)."""
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            size = os.path.getsize(path)
            if path.endswith(".gz") and size >= 18:
                with open(path, "rb") as fh:
                    fh.seek(-4, os.SEEK_END)
                    size = max(size, int.from_bytes(fh.read(4), "little"))
            total += size
    return total
