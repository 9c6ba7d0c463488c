"""A Watcher that has read the demo capture, for the tests of what watch prints
and serves."""

from __future__ import annotations

import pytest

from portmatrix.decode import decode
from portmatrix.policy.inventory import load_inventory
from portmatrix.policy.matrix import load_matrix
from portmatrix.sources.capture import Capture
from portmatrix.watch.watcher import Event, Watcher
from support.paths import DEMO, DEMO_INVENTORY


@pytest.fixture
def demo_watch() -> tuple[Watcher, list[Event]]:
    """A Watcher of the bundled thoughtspot matrix that has read the whole demo
    capture and ticked once (its flows are still live), and what the tick announced."""
    matrix = load_matrix(["thoughtspot"])
    watcher = Watcher(matrix, load_inventory(str(DEMO_INVENTORY), matrix))
    for raw in Capture(str(DEMO)).batches():
        watcher.add(*decode(raw))
    return watcher, watcher.tick()
