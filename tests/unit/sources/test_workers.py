"""How many worker processes a read gets: as many as pay for themselves (the
work they take over against what starting each costs); never for standard
input; gzip counted unpacked. Flow records still go by a fixed size per worker."""

from __future__ import annotations

import gzip
import os

from portmatrix.sources import workers


def write(path, size: int) -> str:
    path.write_bytes(b"\0" * size)
    return str(path)


def test_a_worker_pays_when_its_share_saves_more_than_it_costs(monkeypatch):
    monkeypatch.setattr(workers, "usable_cpus", lambda: 8)
    assert workers.worth(10.0, 0.0, jobs=1, start=0.03) == 1
    assert workers.worth(10.0, 0.0, jobs=2, start=0.03) == 2
    assert workers.worth(10.0, 0.0, jobs=8, start=0.03) == 8
    assert workers.worth(0.05, 0.0, jobs=8, start=0.03) == 1  # 0.025 + 0.03 > 0.05
    assert workers.worth(0.1, 0.0, jobs=8, start=0.03) == 2  # 0.05 + 0.03; three: 0.093
    assert workers.worth(10.0, 0.0, jobs=8, start=0.35) == 5  # 2 + 1.4; six: 1.67 + 1.75


def test_one_process_already_hashes_on_a_second_cpu(monkeypatch):
    monkeypatch.setattr(workers, "usable_cpus", lambda: 2)
    # One process decodes (1 s) while its thread hashes (1 s): two cannot beat it.
    assert workers.worth(1.0, 1.0, jobs=2, start=0.03, split=True) == 1
    # Decoding twice the hashing: a second process halves it, the hash meanwhile here.
    assert workers.worth(2.0, 1.0, jobs=2, start=0.03, split=True) == 2
    monkeypatch.setattr(workers, "usable_cpus", lambda: 1)
    assert workers.worth(2.0, 1.0, jobs=2, start=0.03, split=True) == 1  # no CPU for it


def test_no_measuring_when_no_machine_reads_fast_enough_to_need_it(tmp_path):
    small = write(tmp_path / "a.pcap", 1 << 20)
    big = write(tmp_path / "b.pcap", 1 << 28)
    assert not workers.could_pay([small], jobs=8, start=0.03)  # 0.26 ms at best
    assert workers.could_pay([big], jobs=8, start=0.03)
    assert not workers.could_pay([big], jobs=1, start=0.03)
    assert not workers.could_pay([big, "-"], jobs=8, start=0.03)  # a worker cannot read our stdin


def test_gzip_counts_unpacked(tmp_path):
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.pcap.gz"
        path.write_bytes(gzip.compress(b"\0" * 20_000))  # ~50 bytes on disk
        paths.append(str(path))
    assert workers.decoded_size(paths) == 60_000
    assert workers.file_size(str(tmp_path / "gone.pcap")) == 0


def test_flow_records_one_process_per_share_of_input(tmp_path, monkeypatch):
    monkeypatch.setattr(workers, "PER_PROCESS", 1000)
    a, b = write(tmp_path / "a.log", 5000), write(tmp_path / "b.log", 5000)
    assert workers.processes([a, b], jobs=4) == 2
    assert workers.processes([a], jobs=4) == 1
    assert workers.processes([a, "-", b], jobs=4) == 1
    paths = [write(tmp_path / f"{i}.log", 700) for i in range(4)]  # 2,800 bytes
    assert workers.processes(paths, jobs=8) == 2


def test_usable_cpus_without_affinity(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert workers.usable_cpus() == (os.cpu_count() or 1)
