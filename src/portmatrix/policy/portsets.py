"""How the responder ports seen for one role pair and protocol become a draft's
port sets: single ports where the evidence is thin, ranges where it is dense,
and the pools dynamic services answer on (passive FTP, RPC, a vendor's
dynamic range).

- A *pool*: ports above 1023 seen in one or two flows each (a port allocated
  per connection), none more than GAP_FACTOR mean gaps from the next, at
  least `min_ports` of them over at least `min_flows` flows. It becomes the
  span seen or, when the ports are sparse and lie above 32767, the narrowest
  known ephemeral range holding them. Services inside that span are absorbed
  into it.
- A *dense run*: ports with at least `density` of the ports between them seen,
  again at least `min_ports` over `min_flows` flows: the range they span.
- Anything else stays a single port: two ports 100 apart seen once each are two
  rules, not a range of 101.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPHEMERAL = (
    (49152, 65535, "IANA and Windows"),
    (32768, 60999, "Linux"),
    (32768, 65535, "Linux and Windows"),
)
"""Ephemeral (dynamic) port ranges, narrowest first."""

RARE_FLOWS = 2  # a port seen in at most this many flows may have been allocated per use
FIRST_DYNAMIC = 1024  # ports below are never taken for allocated ones
GAP_FACTOR = 8  # a pool breaks where two ports are this many mean gaps apart
MIN_GAP = 16


@dataclass(frozen=True)
class RangeOptions:
    """When observed ports become a range (the thresholds are `learn` options)."""

    min_ports: int = 8  # distinct ports before a range is drawn
    min_flows: int = 16  # flows over those ports
    density: float = 0.5  # dense runs: distinct ports seen / ports in the range


@dataclass(frozen=True)
class PortSet:
    """Ports of one draft rule: [lo, hi], how they were drawn, and the evidence."""

    lo: int
    hi: int
    kind: str  # port | range | pool
    seen: int  # distinct ports observed in it
    flows: int
    note: str = ""  # how a range was drawn, for the rule's description


def generalise(ports: np.ndarray, flows: np.ndarray, options: RangeOptions) -> list[PortSet]:
    """Disjoint port sets covering every port of `ports` (sorted, distinct),
    `flows[i]` the flows seen on `ports[i]`; in port order."""
    ports = np.asarray(ports, np.int64)
    flows = np.asarray(flows, np.int64)
    out = []
    for lo, hi in _pools(ports, flows, options):
        inside = (ports >= lo) & (ports <= hi)
        seen, total = int(inside.sum()), int(flows[inside].sum())
        out.append(PortSet(lo, hi, "pool", seen, total, _pool_note(lo, hi, seen, total)))
        ports, flows = ports[~inside], flows[~inside]
    out += _dense_runs(ports, flows, options)
    return sorted(out, key=lambda s: s.lo)


def _pools(ports: np.ndarray, flows: np.ndarray, options: RangeOptions) -> list[tuple[int, int]]:
    """Spans of ports allocated per use (see the module docstring), disjoint."""
    rare = (flows <= RARE_FLOWS) & (ports >= FIRST_DYNAMIC)
    values, counts = ports[rare], flows[rare]
    if len(values) < options.min_ports:
        return []
    gaps = np.diff(values)
    limit = max(GAP_FACTOR * float(gaps.mean()), MIN_GAP)
    cuts = np.flatnonzero(gaps > limit) + 1
    spans = []
    for part, part_counts in zip(np.split(values, cuts), np.split(counts, cuts), strict=True):
        if len(part) < options.min_ports or int(part_counts.sum()) < options.min_flows:
            continue
        lo, hi = int(part[0]), int(part[-1])
        dense = len(part) / (hi - lo + 1) >= options.density
        spans.append((lo, hi) if dense else _snap(lo, hi))
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):  # two pools snapped to one ephemeral range are one
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _snap(lo: int, hi: int) -> tuple[int, int]:
    """The narrowest known ephemeral range holding [lo, hi], else [lo, hi]."""
    for start, end, _ in EPHEMERAL:
        if start <= lo and hi <= end:
            return start, end
    return lo, hi


def _pool_note(lo: int, hi: int, seen: int, total: int) -> str:
    known = next((name for start, end, name in EPHEMERAL if (start, end) == (lo, hi)), "")
    span = f"the ephemeral range of {known}" if known else "the span they were seen in"
    return (
        f"dynamic ports: {seen} distinct ports seen in {total} flows, most of them "
        f"once (allocated per connection); {span}"
    )


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
