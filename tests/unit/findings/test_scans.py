"""Scan detection: failed forbidden attempts counted per host pair (ports) and per
host and port (hosts), across calls, bounded."""

from __future__ import annotations

import numpy as np

from portmatrix.decode.keyhash import mix
from portmatrix.findings import scans
from portmatrix.findings.model import Thresholds

V4 = np.uint64(0xFFFF << 32)


def attempts(src: int, dsts, ports):
    dsts, ports = np.broadcast_arrays(np.asarray(dsts), np.asarray(ports))
    n = len(dsts)
    return (
        np.zeros(n, np.uint64),
        np.full(n, V4 | np.uint64(src)),
        np.zeros(n, np.uint64),
        V4 | dsts.astype(np.uint64),
        (6 << 16) | ports.astype(np.int64),
    )


def scanner(tally, src: int) -> bool:
    return bool(tally.is_scanner(mix(np.zeros(1, np.uint64), np.array([V4 | np.uint64(src)])))[0])


def test_ports_of_one_host_and_hosts_on_one_port():
    t = scans.ScanTally(Thresholds(scan_ports=5, scan_hosts=4))
    t.add(*attempts(1, 100, np.arange(4)))  # 4 ports: not yet
    assert not scanner(t, 1)
    t.add(*attempts(1, 100, np.arange(2, 6)))  # 6 distinct ports in all, across calls
    assert scanner(t, 1)
    t.add(*attempts(2, np.arange(200, 203), 22))  # 3 hosts on one port: not yet
    t.add(*attempts(2, np.arange(200, 203), 22))  # the same three again: still 3
    assert not scanner(t, 2)
    t.add(*attempts(2, [203], 22))
    assert scanner(t, 2)
    # Spread thinly (3 ports on each of 3 hosts) is neither.
    t.add(*attempts(3, np.repeat([1, 2, 3], 3), np.tile([1, 2, 3], 3)))
    assert not scanner(t, 3)
    assert sorted(t.scanners.values()) == [(0, int(V4 | np.uint64(1))), (0, int(V4 | np.uint64(2)))]


def test_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(scans, "KEPT", 10)
    t = scans.ScanTally(Thresholds(scan_ports=50, scan_hosts=50))
    for k in range(5):
        t.add(*attempts(10 + k, 1, np.arange(8)))
    assert len(t._rows["target"]) == 10  # the newest attempts
