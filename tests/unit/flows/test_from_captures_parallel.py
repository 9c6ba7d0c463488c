"""read_traffic over several files: a pool of processes (`jobs`) and a Dask cluster
(`dask`) give exactly the flows of one process, and of the same packets in one
file; errors raised in workers reach the caller intact."""

from __future__ import annotations

import numpy as np
import pytest
from scapy.layers.inet import ICMP, TCP, UDP

from portmatrix.errors import CaptureError, PortmatrixError
from portmatrix.flows import from_captures as traffic
from portmatrix.flows.from_captures import read_traffic
from portmatrix.sources import workers
from portmatrix.testing.captures import ether, frames, ip, tcp_session, write_pcap

C, S, C6, S6 = "10.0.0.1", "10.0.0.2", "2001:db8::1", "2001:db8::2"
PART = 9  # packets per file


def mixed_packets():
    """Frames with timestamps: TCP (v4, v6, refused, VLAN), UDP, ICMP."""
    packets = [
        *tcp_session(C, S, 40000, 443, data=[b"a", b"b", b"c"]),  # 12 packets: spans files
        ip(C, S) / UDP(sport=40001, dport=53) / b"q",
        ip(S, C) / UDP(sport=53, dport=40001) / b"r",
        ip(C, S) / ICMP(type=8, id=9, seq=1),
        ip(S, C) / ICMP(type=0, id=9, seq=1),
        *tcp_session(C6, S6, 40002, 22),
        ip(C, S) / TCP(sport=40003, dport=8443, flags="S"),
        ip(S, C) / TCP(sport=8443, dport=40003, flags="RA", ack=1),
        *tcp_session(C, S, 40004, 80, handshake=False, close="open"),
    ]
    out = [ether(p) for p in packets]
    out += [ether(p, vlans=[20]) for p in tcp_session(C, S, 40005, 7000)]
    return frames(out)


@pytest.fixture(autouse=True)
def workers_for_small_files(monkeypatch):
    """These files are tiny: let each be worth a process, so the pool is tested."""
    monkeypatch.setattr(workers, "PER_PROCESS", 1)


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """(paths of consecutive parts, path of the whole capture)."""
    folder = tmp_path_factory.mktemp("split")
    packets = mixed_packets()
    paths = [
        str(write_pcap(folder / f"part{k:02d}.pcap", packets[start : start + PART]))
        for k, start in enumerate(range(0, len(packets), PART))
    ]
    whole = str(write_pcap(folder / "whole.pcap", packets))
    return paths, whole


@pytest.fixture(scope="module")
def single(split):
    paths, _ = split
    return read_traffic(paths, jobs=1)


FRAME_COLUMNS = {f"{kind}{j}" for kind in ("frame", "file") for j in range(3)}


def assert_same_flows(a, b, skip=frozenset()):
    assert set(a.flows.cols) == set(b.flows.cols)
    for name in a.flows.cols:
        if name not in skip:
            assert np.array_equal(a.flows[name], b.flows[name]), name
            assert a.flows[name].dtype == b.flows[name].dtype, name


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
    monkeypatch.setattr(workers, "PER_PROCESS", 256 << 20)

    def no_pool(*args):
        raise AssertionError("a pool was started for a few kilobytes")

    monkeypatch.setattr(traffic, "_in_processes", no_pool)
    assert_same_flows(read_traffic(split[0], jobs=4), single)
    monkeypatch.setattr(workers, "PER_PROCESS", 1)
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
    with pytest.raises(CaptureError) as pooled:
        read_traffic([*paths[:2], str(bad)], jobs=2)
    a, b = alone.value, pooled.value
    assert type(b) is CaptureError
    assert (b.what, b.file, b.where, b.hint) == (a.what, a.file, a.where, a.hint)
    assert str(b) == str(a) and str(bad) in str(b)


# Dask -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as local:
        yield local


def test_dask_gives_the_flows_of_one_process(split, single, cluster):
    paths, _ = split
    remote = read_traffic(paths, dask=cluster.scheduler_address)
    assert_same_flows(remote, single)
    assert remote.counts == single.counts
    assert [c.path for c in remote.captures] == paths


def test_error_in_a_dask_worker_reaches_the_caller_intact(split, cluster, tmp_path):
    paths, _ = split
    bad = tmp_path / "bad.pcap"
    bad.write_text("not a capture", encoding="utf-8")
    with pytest.raises(CaptureError) as caught:
        read_traffic([paths[0], str(bad)], dask=cluster.scheduler_address)
    assert (caught.value.file, caught.value.where) == (str(bad), "byte 0")


@pytest.fixture
def short_dask_timeout(monkeypatch):
    """The scheduler connection gives up after 0.5 s instead of 10 s."""
    distributed = pytest.importorskip("distributed")
    client = distributed.Client

    def quick(address, **options):
        return client(address, **{**options, "timeout": "0.5s"})

    monkeypatch.setattr(distributed, "Client", quick)


def test_unreachable_scheduler_is_a_portmatrix_error(split, short_dask_timeout):
    paths, _ = split
    with pytest.raises(PortmatrixError) as caught:
        read_traffic(paths, dask="tcp://127.0.0.1:1")
    assert caught.value.file == "tcp://127.0.0.1:1"
    assert "cannot reach the Dask scheduler" in str(caught.value)


def test_unreachable_scheduler_exits_2(run_cli, split, short_dask_timeout):
    paths, _ = split
    result = run_cli("check", *paths, "--rules", "thoughtspot", "--dask", "tcp://127.0.0.1:1")
    assert result.exit_code == 2
    assert result.stderr.startswith("portmatrix: error: tcp://127.0.0.1:1: cannot reach")
    assert len(result.stderr.splitlines()) == 1


def test_malformed_scheduler_address_is_a_portmatrix_error(split):
    paths, _ = split
    with pytest.raises(PortmatrixError):
        read_traffic(paths, dask="scheduler-without-port")


def test_dask_missing_names_the_extra(split, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    paths, _ = split
    with pytest.raises(PortmatrixError, match=r"pip install 'portmatrix\[dask\]'"):
        read_traffic(paths, dask="tcp://127.0.0.1:8786")
