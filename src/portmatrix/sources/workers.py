"""How many processes reading is worth: the CPUs this process may use, and what
the input takes to read against what a worker process costs. Light (no numpy):
the CLI reads it for defaults.

A worker pays when the share of the reading it takes over saves more time than
starting it and taking its flows back costs. Both sides are measured: the
reading rate on a sample of the input itself, on this machine, as loaded as it
is now (`flows.from_captures`); the cost of a worker by benchmarks/run.py jobs
(forking this process: a few hundredths of a second; a fresh interpreter from a
fork server, when this process runs other threads: a third of a second).
"""

from __future__ import annotations

import os

# Seconds a worker costs besides its share: started by forking this process, or
# by a fork server (a new interpreter importing portmatrix). benchmarks/run.py jobs.
START = {"fork": 0.03, "forkserver": 0.35}
FASTEST = 0.25e-9  # seconds per byte read: faster than any machine reads a capture
# Flow records (records.formats) still start one worker per this many bytes of input.
PER_PROCESS = 256 << 20


def usable_cpus() -> int:
    """CPUs this process may run on (taskset and cgroup pinning included, on Linux)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worth(decode: float, digest: float, jobs: int, start: float, split: bool = False) -> int:
    """The number of processes (at most `jobs`: the CLI's default is the CPUs there
    are) that read input fastest, reading it taking `decode` seconds and its
    SHA-256 `digest` seconds in one process. One process hashes on a second
    thread when it has a second CPU. Several share the decoding, each after the
    first costing `start`; the files' digests are theirs too, but a `split`
    file's is taken by this process, whole, meanwhile. No more work gets done at
    once than there are CPUs."""
    cpus = usable_cpus()

    def took(k: int) -> float:
        if k == 1:
            return max((decode + digest) / min(cpus, 2), decode, digest)
        spread = decode + (0 if split else digest)
        return max(
            (decode + digest + start * (k - 1)) / cpus,
            spread / k + start * (k - 1),
            digest if split else 0,
        )

    return min(range(1, max(jobs, 1) + 1), key=took)


def could_pay(paths: list[str], jobs: int, start: float) -> bool:
    """Whether a second process could pay at all, read as fast as any machine
    reads: if not, there is no need to measure."""
    if jobs <= 1 or "-" in paths:
        return False
    fastest = decoded_size(paths) * FASTEST
    return worth(fastest, 0.0, jobs, start) > 1 or worth(fastest, 0.0, jobs, start, True) > 1


def processes(paths: list[str], jobs: int) -> int:
    """Worker processes for reading flow-record files `paths` with at most `jobs`;
    1 means read them here: when standard input is among them (a worker cannot
    read it), and when there is too little input to pay for more."""
    if jobs <= 1 or len(paths) <= 1 or "-" in paths:
        return 1
    return max(1, min(jobs, len(paths), decoded_size(paths) // PER_PROCESS))


def decoded_size(paths: list[str]) -> int:
    """Bytes of capture the files hold: a gzip file counts unpacked (its trailer
    says the size modulo 4 GiB; never less than the file itself)."""
    total = 0
    for path in paths:
        total += file_size(path)
    return total


def file_size(path: str) -> int:
    """Bytes of capture one file holds (unpacked, for gzip), 0 when it cannot be read."""
    try:
        size = os.path.getsize(path)
        if path.endswith(".gz") and size >= 18:
            with open(path, "rb") as fh:
                fh.seek(-4, os.SEEK_END)
                size = max(size, int.from_bytes(fh.read(4), "little"))
        return size
    except OSError:
        return 0
