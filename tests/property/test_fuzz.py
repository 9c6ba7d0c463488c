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

import gzip
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


def run_cases(seeds, make, suffix: str, tmp_path, zeek: bool = False, records=None) -> list[str]:
    """Each case through `fuzz.survive`; the failures, one line each with its seed."""
    failures = []
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for seed in seeds:
            path = tmp_path / f"case{suffix}"
            path.write_bytes(make(seed))
            signal.alarm(HANG)
            try:
                fuzz.survive(str(path), tmp_path, zeek=zeek, records=records)
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


@pytest.mark.parametrize("first", range(BASE, BASE + CASES // 3, CHUNK))
def test_mutated_flow_logs_in_every_format(first, tmp_path):
    seeds = range(first, min(first + CHUNK, BASE + CASES // 3))
    failures = run_cases(seeds, fuzz.mutate_flowlog, ".log", tmp_path, records="auto")
    assert not failures, "\n".join(failures)


def test_mutated_flow_logs_through_the_cli(run_cli, tmp_path):
    """A report (0 or 1) or one line `portmatrix: error: FILE:...` (2), from check
    and from flows; never a traceback (run_cli raises what escapes the CLI)."""
    matrix, inventory = fuzz.site(tmp_path)
    outcomes = set()
    cut = gzip.compress(fuzz.flowlog_seeds()["gcp"].encode())
    for seed in [*range(BASE, BASE + 12), "cut"]:
        path = tmp_path / f"case{seed}.log"
        path.write_bytes(cut[: len(cut) // 2] if seed == "cut" else fuzz.mutate_flowlog(seed))
        for args in (
            ("check", "--flowlog", path, "--rules", matrix, "--inventory", inventory),
            ("flows", "--flowlog", path, "--format", "csv"),
        ):
            result = run_cli(*args)
            outcomes.add(result.exit_code)
            assert result.exit_code in (0, 1, 2), (seed, args, result.stderr)
            if result.exit_code == 2:
                (line,) = result.stderr.splitlines()
                assert line.startswith("portmatrix: error: "), (seed, line)
    assert 2 in outcomes and outcomes & {0, 1}


def test_the_flowlog_mutations_reach_the_defences():
    cases = [fuzz.mutate_flowlog(seed) for seed in range(BASE, BASE + 200)]
    assert sum(c[:2] == b"\x1f\x8b" for c in cases) >= 20
    assert sum(c.lstrip()[:1] == b"{" for c in cases) >= 30
    assert sum(b"srcaddr" in c[:400] for c in cases) >= 20
    assert len(set(cases)) > 0.95 * len(cases)  # a few cut to nothing, alike


def test_the_mutations_reach_the_defences():
    """The cases are not all the same few: they cover gzip, both formats, crafted
    interface descriptions and cut files (a weak mutator would pass any code)."""
    cases = [fuzz.mutate_capture(seed) for seed in range(BASE, BASE + 200)]
    assert sum(c[:2] == b"\x1f\x8b" for c in cases) >= 5
    assert sum(c[:4] == b"\x0a\x0d\x0d\x0a" for c in cases) >= 20
    assert len({c for c in cases}) >= 190
    assert sum(b"=HYPERLINK" in c or b"\x1b]0;" in c for c in cases) >= 1
