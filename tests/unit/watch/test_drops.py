"""Capture loss per interface, each packet once: offered minus captured once the
capture has delivered up to a moment, what still waits reported as backlog,
dumpcap's own figure when there is no counter (halved on loopback)."""

from __future__ import annotations

import numpy as np
import pytest

from portmatrix.sources.base import InterfaceStats
from portmatrix.watch import drops
from portmatrix.watch.drops import QUIET, DropMeter

S = 1_000_000_000


class Counter:
    """A TapCounter stand-in: `offered` is what the kernel counted so far."""

    def __init__(self, *offered: int) -> None:
        self.offered = list(offered)
        self.closed = False

    def read(self) -> list[int]:
        return list(self.offered)

    def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def no_card_drops(monkeypatch):
    monkeypatch.setattr(drops, "interface_drops", lambda ifaces: [0] * len(ifaces))


def batch(meter: DropMeter, iface: int, *ts: float) -> None:
    meter.captured_batch(np.full(len(ts), iface, np.int32), (np.array(ts) * S).astype(np.int64))


def test_loss_is_known_once_the_capture_has_delivered_past_the_moment():
    counter = Counter(100)
    meter = DropMeter(["eth0"], counter, start_ns=0)
    batch(meter, 0, *np.linspace(1, 9, 60))  # 60 of the 100 offered by t=10 came
    meter.sample(10 * S)
    assert meter.by_interface() == {"eth0": 0}  # the rest may still be in the pipe
    assert meter.backlog().tolist() == [40]
    batch(meter, 0, 9.5, 10.2)  # one more from before t=10, one just after: may be more
    assert meter.by_interface() == {"eth0": 0}
    batch(meter, 0, 9.9, 11)  # a late one from before t, then half a second past: all in
    assert meter.by_interface() == {"eth0": 38}
    assert meter.backlog().tolist() == [0]
    assert meter.total() == 38


def test_a_quiet_link_settles_after_a_while():
    counter = Counter(10)
    meter = DropMeter(["eth0"], counter, start_ns=0)
    batch(meter, 0, 1, 2, 3)
    meter.sample(5 * S, quiet=True)
    assert meter.total() == 0  # offered just now: it may still come
    meter.sample(5 * S + QUIET, quiet=True)
    assert meter.total() == 7


def test_each_interface_on_its_own():
    counter = Counter(10, 5)
    meter = DropMeter(["eth0", "eth1"], counter, start_ns=0)
    meter.sample(10 * S)
    batch(meter, 0, *range(1, 11), 11)  # eth0: all 10, and one after
    assert meter.by_interface() == {"eth0": 0, "eth1": 0}  # eth1 has said nothing yet
    batch(meter, 1, 3, 12)  # eth1: one of its five, then one after the moment
    assert meter.by_interface() == {"eth0": 0, "eth1": 4}


def test_packets_from_before_the_start_are_not_compared():
    counter = Counter(3)
    meter = DropMeter(["eth0"], counter, start_ns=100 * S)
    batch(meter, 0, 50, 60, 101, 102, 103)  # two were buffered before counting began
    meter.settle_all()
    meter.sample(104 * S)
    meter.settle_all()
    assert meter.total() == 0


def test_a_capture_of_other_interfaces_drops_the_counter():
    """A stand-in replaying a file: its interfaces are not the ones counted."""
    counter = Counter(1000)
    meter = DropMeter(["eth0"], counter, start_ns=0)
    meter.check_names([""])
    assert counter.closed and meter.counter is None and not meter.live
    meter.sample(10 * S)
    assert meter.total() == 0


def test_without_a_counter_dumpcaps_statistics_count_halved_on_loopback(monkeypatch):
    monkeypatch.setattr(drops, "is_loopback", lambda name: name == "lo")
    meter = DropMeter(["lo", "eth0"], None, start_ns=0)
    meter.from_statistics(
        {0: InterfaceStats(0, dropped=1000), 1: InterfaceStats(1, dropped=7, os_dropped=3)}
    )
    assert meter.by_interface() == {"lo": 500, "eth0": 10}
    assert "halved on loopback" in meter.remarks()[0]


def test_dumpcaps_statistics_are_not_added_to_a_live_count():
    meter = DropMeter(["eth0"], Counter(5), start_ns=0)
    meter.sample(1 * S)
    meter.settle_all()
    meter.from_statistics({0: InterfaceStats(0, dropped=5)})
    assert meter.total() == 5  # once, not twice
    assert "offered by the kernel minus packets captured" in meter.remarks()[0]


def test_card_drops_and_unanalysed_packets_count_too(monkeypatch):
    card = iter([[100], [130]])
    monkeypatch.setattr(drops, "interface_drops", lambda ifaces: next(card))
    meter = DropMeter(["eth0"], None, start_ns=0)
    meter.sample(1 * S)
    meter.unanalysed = 12
    assert meter.by_interface() == {"eth0": 30}
    assert meter.total() == 42
    remarks = " ".join(meter.remarks())
    assert "30 packets were dropped by the interface card" in remarks
    assert "12 packets arrived after the watch was stopped" in remarks
