"""A problem found tick after tick: its numbers add up as one check over all the
flows would count them, bounded, and it is worded as check words it."""

from __future__ import annotations

import numpy as np

from portmatrix.decode import decode
from portmatrix.findings import tracked
from portmatrix.policy.inventory import load_inventory
from portmatrix.policy.matrix import load_matrix
from portmatrix.testing.captures import ether, raw_batch, tcp_session
from portmatrix.watch.watcher import Watcher
from support.site import N1, N2, N3, USER

SECOND = 10**9


def watch(site, sessions):
    small = site("small")
    matrix = load_matrix([str(small.matrix)])
    w = Watcher(matrix, load_inventory(str(small.inventory), matrix))
    for k, packets in enumerate(sessions):
        w.add(*decode(raw_batch([ether(p) for p in packets], start=k * SECOND)))
        w.tick(w.last_ts + 200 * SECOND)  # each one over: one tick each
    return w


def test_numbers_add_up_across_ticks(site, check_packets):
    sessions = [tcp_session(USER, node, 40000 + k, 8443) for k, node in enumerate([N1, N2, N3])]
    w = watch(site, sessions)
    (t,) = w.done.values()
    assert (t.flows, len(t.hosts[0]), len(t.hosts[1])) == (3, 1, 3)
    worded = t.worded(w.coverage.rules)
    everything = [p for packets in sessions for p in packets]
    whole = [f for f in check_packets(everything).findings if f.kind == "flow"]
    (check,) = whole
    assert (worded.id, worded.message, worded.flows, worded.pairs) == (
        check.id,
        check.message,
        check.flows,
        check.pairs,
    )


def test_hosts_and_pairs_are_bounded(site, monkeypatch):
    monkeypatch.setattr(tracked, "HOSTS_KEPT", 2)
    monkeypatch.setattr(tracked, "PAIRS_KEPT", 2)
    sessions = [tcp_session(f"10.0.2.{k + 10}", N1, 40000, 8443) for k in range(5)]
    (t,) = watch(site, sessions).done.values()
    assert t.flows == 5
    assert len(t.hosts[0]) == 2 and len(t.pairs) == 2  # at least that many, kept bounded
    assert t.ports.tolist() == [np.int64((6 << 16) | 8443)]
