"""Mutated captures and Zeek logs through every command: no traceback, no hang.

Seeded: each case is rebuilt from its seed alone (`support.fuzz.mutate_capture`,
`mutate_zeek`), so a failure names the seed that reproduces it:

    PYTHONPATH=tests .venv/bin/python -c "from support import fuzz; \\
        open('case.pcap', 'wb').write(fuzz.mutate_capture(SEED))"

`PORTMATRIX_FUZZ_SEED` moves the run to other seeds, `PORTMATRIX_FUZZ_CASES`
changes how many captures it mutates (Zeek logs: a third as many). The large
run (10,000 captures, 1,000 logs, memory watched) is `benchmarks/fuzz.py`.
"""

from __future__ import annotations

import os
import signal
import traceback

import pytest

from support import fuzz

BASE = int(os.environ.get("PORTMATRIX_FUZZ_SEED", "13000"))
CASES = int(os.environ.get("PORTMATRIX_FUZZ_CASES", "300"))
CHUNK = 50
HANG = 30  # seconds: a case taking longer has hung (cases take ~0.1 s)


class Hung(Exception):
    pass


def _alarm(signum, frame):
    raise Hung(f"no result after {HANG} s")


def run_cases(seeds, make, suffix: str, tmp_path, zeek: bool = False) -> list[str]:
    """Each case through `fuzz.survive`; the failures, one line each with its seed."""
    failures = []
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for seed in seeds:
            path = tmp_path / f"case{suffix}"
            path.write_bytes(make(seed))
            signal.alarm(HANG)
            try:
                fuzz.survive(str(path), tmp_path, zeek=zeek)
            except Exception as exc:
                where = traceback.extract_tb(exc.__traceback__)[-1]
                failures.append(
                    f"seed {seed}: {type(exc).__name__}: {exc} ({where.filename}:{where.lineno})"
                )
            finally:
                signal.alarm(0)
    finally:
        signal.signal(signal.SIGALRM, previous)
    return failures


@pytest.mark.parametrize("first", range(BASE, BASE + CASES, CHUNK))
def test_mutated_captures_in_every_format_and_evidence(first, tmp_path):
    seeds = range(first, min(first + CHUNK, BASE + CASES))
    failures = run_cases(seeds, fuzz.mutate_capture, ".pcap", tmp_path)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("first", range(BASE, BASE + CASES // 3, CHUNK))
def test_mutated_zeek_logs_in_every_format(first, tmp_path):
    seeds = range(first, min(first + CHUNK, BASE + CASES // 3))
    failures = run_cases(seeds, fuzz.mutate_zeek, ".log", tmp_path, zeek=True)
    assert not failures, "\n".join(failures)


def test_the_mutations_reach_the_defences():
    """The cases are not all the same few: they cover gzip, both formats, crafted
    interface descriptions and cut files (a weak mutator would pass any code)."""
    cases = [fuzz.mutate_capture(seed) for seed in range(BASE, BASE + 200)]
    assert sum(c[:2] == b"\x1f\x8b" for c in cases) >= 5
    assert sum(c[:4] == b"\x0a\x0d\x0d\x0a" for c in cases) >= 20
    assert len({c for c in cases}) >= 190
    assert sum(b"=HYPERLINK" in c or b"\x1b]0;" in c for c in cases) >= 1
