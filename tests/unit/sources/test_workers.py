"""How many worker processes a read gets: never for standard input or a single
file, and no more than the input (gzip counted unpacked) pays for."""

from __future__ import annotations

import gzip
import os

from portmatrix.sources import workers


def write(path, size: int) -> str:
    path.write_bytes(b"\0" * size)
    return str(path)


def test_one_process_for_one_file_stdin_or_one_job(tmp_path, monkeypatch):
    monkeypatch.setattr(workers, "PER_PROCESS", 1000)
    a, b = write(tmp_path / "a.pcap", 5000), write(tmp_path / "b.pcap", 5000)
    assert workers.processes([a, b], jobs=4) == 2
    assert workers.processes([a], jobs=4) == 1
    assert workers.processes([a, b], jobs=1) == 1
    assert workers.processes([a, "-", b], jobs=4) == 1  # a worker cannot read our stdin


def test_no_more_processes_than_the_input_pays_for(tmp_path, monkeypatch):
    monkeypatch.setattr(workers, "PER_PROCESS", 1000)
    paths = [write(tmp_path / f"{i}.pcap", 700) for i in range(4)]  # 2,800 bytes
    assert workers.processes(paths, jobs=8) == 2
    assert workers.processes([str(tmp_path / "gone.pcap"), paths[0]], jobs=8) == 1


def test_gzip_counts_unpacked(tmp_path, monkeypatch):
    monkeypatch.setattr(workers, "PER_PROCESS", 10_000)
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.pcap.gz"
        path.write_bytes(gzip.compress(b"\0" * 20_000))  # ~50 bytes on disk
        paths.append(str(path))
    assert workers.decoded_size(paths) == 60_000
    assert workers.processes(paths, jobs=8) == 3


def test_usable_cpus_without_affinity(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert workers.usable_cpus() == (os.cpu_count() or 1)
