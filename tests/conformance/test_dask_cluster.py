"""read_traffic on a real Dask cluster (two worker processes on this machine):
the flows of one process, errors raised in a worker reach the caller intact,
and an unreachable or malformed scheduler address is a one-line error."""

from __future__ import annotations

import pytest

from portmatrix.errors import CaptureError, PortmatrixError
from portmatrix.flows.from_captures import read_traffic
from support import tools
from support.split import assert_same_flows, write_split


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """(paths of consecutive parts, path of the whole capture)."""
    return write_split(tmp_path_factory.mktemp("split"))


@pytest.fixture(scope="module")
def single(split):
    paths, _ = split
    return read_traffic(paths, jobs=1)


@pytest.fixture(scope="module")
def cluster():
    distributed = tools.module("distributed", "pip install 'portmatrix[dask]'")
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
    # Beside a readable file it does not stop the read: it comes back intact, as
    # the reason one input was not read.
    traffic = read_traffic([paths[0], str(bad)], dask=cluster.scheduler_address)
    (error,) = traffic.unreadable
    assert isinstance(error, CaptureError)
    assert (error.file, error.where) == (str(bad), "byte 0")
    with pytest.raises(CaptureError) as caught:  # alone: nothing to report but the error
        read_traffic([str(bad)], dask=cluster.scheduler_address)
    assert (caught.value.file, caught.value.where) == (str(bad), "byte 0")


@pytest.fixture
def short_dask_timeout(monkeypatch):
    """The scheduler connection gives up after 0.5 s instead of 10 s."""
    distributed = tools.module("distributed", "pip install 'portmatrix[dask]'")
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
