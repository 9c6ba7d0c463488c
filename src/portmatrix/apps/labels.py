"""Application labels of chosen flows: what their payload says they carry.

A label is the first that holds of: our payload signatures (`signatures.py`,
which also give the details: TLS SNI and ALPN, HTTP Host, method and user
agent, an SSH banner, ...), then Wireshark's heuristic dissectors run on the
same packets with their ports replaced (`tshark.py`). A flow that carried
payload neither recognises is `unidentified`; one that carried none is
`no-payload` (a flow whose packets were inside a tunnel or fragmented is not
read, and stays unidentified). Never the port's service: a label is evidence
from the bytes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from portmatrix.apps import samples as sampling
from portmatrix.apps import signatures, tshark
from portmatrix.flows.model import Flows
from portmatrix.sources.workers import usable_cpus

UNIDENTIFIED = "unidentified"
NO_PAYLOAD = "no-payload"
BY = ("payload", "tshark")
"""How a label was found: payload: our signature of the protocol's first bytes;
tshark: a Wireshark heuristic dissector on the payload (ports hidden from it)."""


@dataclass
class Labels:
    """Per labelled flow (indices into the flows it was made for): the label, its
    details, and how it was found (BY, or "" for unidentified and no-payload)."""

    flows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    labels: list[str] = field(default_factory=list)
    details: list[dict[str, str]] = field(default_factory=list)
    by: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def of(self, n: int) -> tuple[list[str], list[dict[str, str]]]:
        """Labels and details of all `n` flows ("" and {} for those not labelled)."""
        labels, details = [""] * n, [{} for _ in range(n)]
        for k, f in enumerate(self.flows.tolist()):
            labels[f], details[f] = self.labels[k], self.details[k]
        return labels, details

    def among(self, members: np.ndarray) -> np.ndarray:
        """The places (into `labels`) of those of these flows that are labelled, in
        the members' order: a lookup by sorting, not a step per member (a flood's
        finding has millions of members and about a hundred labels)."""
        members = np.asarray(members, np.int64)
        order = np.argsort(self.flows, kind="stable")
        keys = self.flows[order]
        pos = np.minimum(np.searchsorted(keys, members), max(len(keys) - 1, 0))
        hit = (keys[pos] == members) if len(keys) else np.zeros(len(members), bool)
        return order[pos[hit]]

    def counts(self, members: np.ndarray) -> dict[str, int]:
        """How many of these flows (indices) have each label, the most first."""
        return self.counted(self.among(members))

    def counted(self, places: np.ndarray) -> dict[str, int]:
        """`counts` of flows already found (`among`)."""
        out: dict[str, int] = {}
        for k in places.tolist():
            out[self.labels[k]] = out.get(self.labels[k], 0) + 1
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def label_flows(
    paths: list[str],
    flows: Flows,
    chosen: np.ndarray | None = None,
    *,
    use_tshark: bool = True,
    signatures_first: bool = True,
    on_batch=None,
) -> Labels:
    """Label the `chosen` flows (indices or mask; all by default) from the first
    packets they have in the capture files `paths`. `use_tshark=False` labels with
    our signatures alone; `signatures_first=False` with tshark alone (what
    benchmarks/labels.py compares). `on_batch(bytes, packets)`: the read's progress."""
    index = np.arange(len(flows)) if chosen is None else np.asarray(chosen)
    if index.dtype == bool:
        index = np.flatnonzero(index)
    out = Labels(flows=index)
    if not len(index):
        return out
    program = tshark.find() if use_tshark else None
    if use_tshark and program is None:
        out.notices.append(
            "tshark not found: application labels come from portmatrix's own payload "
            "signatures only (apt-get install tshark for Wireshark's too)"
        )
    # With a spare CPU, tshark loads its dissectors while the samples are read.
    running = tshark.Dissector(program, usable_cpus() > 1) if program else contextlib.nullcontext()
    with running as dissector:
        found = sampling.read_samples(paths, flows.take(index), on_batch)
        for sample in found.samples:
            hit = signatures.identify(sample) if signatures_first else None
            out.labels.append(hit[0] if hit else "")
            out.details.append(hit[1] if hit else {})
            out.by.append("payload" if hit else "")
        rest = [k for k, label in enumerate(out.labels) if not label]
        named: dict[int, str] = {}
        # tshark names from payload only: flows that carried none (a scan's) need no run.
        only = {k for k in rest if found.samples[k].client or found.samples[k].server}
        if dissector is not None and only:
            subset = sampling.Samples(
                found.samples,
                [p for p, f in zip(found.packets, found.flow_of_packet, strict=True) if f in only],
                [f for f in found.flow_of_packet if f in only],
                found.infos,
            )
            named = dissector.labels(subset)
    for k in rest:
        sample = found.samples[k]
        if k in named:
            out.labels[k], out.by[k] = named[k], "tshark"
        else:
            payload = sample.client or sample.server or k in found.unread
            out.labels[k] = UNIDENTIFIED if payload else NO_PAYLOAD
    return out
