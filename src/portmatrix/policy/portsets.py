"""How the responder ports seen for one role pair and protocol become a draft's
port sets: single ports where the evidence is thin, ranges where it is dense,
and the ephemeral ranges dynamic services answer on (passive FTP, RPC).

A range is only drawn above a threshold of distinct ports and of flows: two
ports 100 apart seen once each are two rules, not a range of 101.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPHEMERAL = (
    (49152, 65535, "IANA and Windows"),
    (32768, 60999, "Linux"),
    (32768, 65535, "Linux and Windows"),
)
"""Ephemeral (dynamic) port ranges, narrowest first: a server answering on ports
drawn from one of these allocates them per connection."""

RARE_FLOWS = 2  # a port seen in at most this many flows (median) was allocated per use


@dataclass(frozen=True)
class RangeOptions:
    """When observed ports become a range (the thresholds are `learn` options)."""

    min_ports: int = 8  # distinct ports before a range is drawn
    min_flows: int = 16  # flows over those ports
    density: float = 0.5  # distinct ports seen / ports in the range, at least


@dataclass(frozen=True)
class PortSet:
    """Ports of one draft rule: [lo, hi], how they were drawn, and the evidence."""

    lo: int
    hi: int
    kind: str  # port | range | ephemeral
    seen: int  # distinct ports observed in it
    flows: int
    note: str = ""  # how a range was drawn, for the rule's description


def generalise(ports: np.ndarray, flows: np.ndarray, options: RangeOptions) -> list[PortSet]:
    """Port sets covering every port of `ports` (sorted, distinct), `flows[i]` the
    flows seen on `ports[i]`; in port order."""
    ports = np.asarray(ports, np.int64)
    flows = np.asarray(flows, np.int64)
    out = []
    dynamic = _ephemeral(ports, flows, options)
    if dynamic is not None:
        out.append(dynamic)
        keep = (ports < dynamic.lo) | (ports > dynamic.hi)
        ports, flows = ports[keep], flows[keep]
    out += _dense_runs(ports, flows, options)
    return sorted(out, key=lambda s: s.lo)


def _ephemeral(ports: np.ndarray, flows: np.ndarray, options: RangeOptions) -> PortSet | None:
    """The narrowest known ephemeral range holding the ports above 32767, when
    enough of them were seen, spread out, each in a flow or two: ports allocated
    per use."""
    high = ports >= EPHEMERAL[1][0]
    seen, total = int(high.sum()), int(flows[high].sum())
    if seen < options.min_ports or total < options.min_flows:
        return None
    lo, hi = int(ports[high][0]), int(ports[high][-1])
    if np.median(flows[high]) > RARE_FLOWS or seen / (hi - lo + 1) >= options.density:
        return None  # regular services, or a dense run that makes a tighter range
    start, end, name = next((s, e, n) for s, e, n in EPHEMERAL if s <= lo and hi <= e)
    note = (
        f"dynamic ports: {seen} distinct ports seen in {total} flows, each port "
        f"in few flows; the ephemeral range of {name}"
    )
    return PortSet(start, end, "ephemeral", seen, total, note)


def _dense_runs(ports: np.ndarray, flows: np.ndarray, options: RangeOptions) -> list[PortSet]:
    """Runs of ports dense enough to be a range (greedy, left to right), each kept
    as a range when the thresholds are met, else as its single ports."""
    out = []
    values, counts = ports.tolist(), flows.tolist()
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and (j + 2 - i) / (values[j + 1] - values[i] + 1) >= (
            options.density
        ):
            j += 1
        seen, total = j - i + 1, sum(counts[i : j + 1])
        if seen >= options.min_ports and total >= options.min_flows:
            lo, hi = values[i], values[j]
            note = f"a range drawn from {seen} distinct ports seen in {total} flows"
            out.append(PortSet(lo, hi, "range", seen, total, note))
        else:
            out += [
                PortSet(p, p, "port", 1, c)
                for p, c in zip(values[i : j + 1], counts[i : j + 1], strict=True)
            ]
        i = j + 1
    return out
