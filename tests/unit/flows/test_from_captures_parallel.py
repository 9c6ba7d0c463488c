"""read_traffic over several files: a pool of processes (`jobs`) gives exactly the
flows of one process, and of the same packets in one file; errors raised in
workers reach the caller intact; without Dask installed, --dask names the extra.
The same on a real Dask cluster: tests/conformance/test_dask_cluster.py."""

from __future__ import annotations

import numpy as np
import pytest

from portmatrix.errors import CaptureError, PortmatrixError
from portmatrix.flows import from_captures as traffic
from portmatrix.flows.from_captures import read_traffic
from portmatrix.sources import workers
from support.split import FRAME_COLUMNS, PART, assert_same_flows, write_split


def free_workers(monkeypatch):
    """Workers that cost nothing to start: worth it for any input, however small."""
    monkeypatch.setattr(workers, "START", dict.fromkeys(workers.START, 0.0))


@pytest.fixture(autouse=True)
def workers_for_small_files(monkeypatch):
    """These files are tiny: let each be worth a process, so the pool is tested."""
    free_workers(monkeypatch)


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """(paths of consecutive parts, path of the whole capture)."""
    return write_split(tmp_path_factory.mktemp("split"))


@pytest.fixture(scope="module")
def single(split):
    paths, _ = split
    return read_traffic(paths, jobs=1)


def test_parts_are_several_files_and_a_flow_spans_two(split, single):
    paths, _ = split
    assert len(paths) >= 4
    assert len(single.captures) == len(paths)
    first = int(np.flatnonzero(single.flows["resp_port"] == 443)[0])
    # The 12-packet connection starts in file 0 and ends in file 1: one flow.
    assert int((single.flows["resp_port"] == 443).sum()) == 1
    assert single.flows["pkts_fwd"][first] + single.flows["pkts_rev"][first] == 12
    assert single.flows["file0"][first] == 0


def test_jobs_give_the_flows_of_one_process(split, single):
    paths, _ = split
    many = read_traffic(paths, jobs=2)
    assert_same_flows(many, single)
    assert many.counts == single.counts
    assert [c.path for c in many.captures] == paths
    assert [c.sha256 for c in many.captures] == [c.sha256 for c in single.captures]


def test_small_inputs_are_not_worth_a_pool(split, single, monkeypatch):
    monkeypatch.setattr(workers, "START", {"fork": 0.03, "forkserver": 0.35})

    def no_pool(*args):
        raise AssertionError("a pool was started for a few kilobytes")

    monkeypatch.setattr(traffic, "_in_processes", no_pool)
    assert_same_flows(read_traffic(split[0], jobs=4), single)
    free_workers(monkeypatch)
    with pytest.raises(AssertionError, match="a pool was started"):
        read_traffic(split[0], jobs=4)


def test_split_files_give_the_flows_of_the_whole_file(split, single):
    _, whole_path = split
    whole = read_traffic([whole_path])
    assert len(whole.flows) == len(single.flows) == 7
    assert_same_flows(single, whole, skip=FRAME_COLUMNS)
    assert single.counts == whole.counts
    # Frame numbers are per file: (file, frame) in the parts is frame
    # file * PART + frame of the whole capture.
    for j in range(3):
        frame, file = single.flows[f"frame{j}"], single.flows[f"file{j}"]
        joined = np.where(frame >= 0, file * PART + frame, -1)
        assert np.array_equal(joined, whole.flows[f"frame{j}"]), j


def test_error_in_a_worker_process_reaches_the_caller_intact(split, tmp_path):
    paths, _ = split
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\x0a\x0d\x0d\x0a" + bytes(40))  # a pcapng header that is not one
    with pytest.raises(CaptureError) as alone:
        read_traffic([str(bad)])
    # Beside readable files it does not stop the read: it comes back, intact, as
    # the reason one input was not read (the command then exits 2 after its report).
    pooled = read_traffic([*paths[:2], str(bad)], jobs=2)
    (b,) = pooled.unreadable
    assert len(pooled.flows) and pooled.captures[2].path == str(bad)
    a = alone.value
    assert type(b) is CaptureError
    assert (b.what, b.file, b.where, b.hint) == (a.what, a.file, a.where, a.hint)
    assert str(b) == str(a) and str(bad) in str(b)


def test_dask_missing_names_the_extra(split, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    paths, _ = split
    with pytest.raises(PortmatrixError, match=r"pip install 'portmatrix\[dask\]'"):
        read_traffic(paths, dask="tcp://127.0.0.1:8786")
