"""Read captures into finished flows: sources -> decode -> flow table.

The result keeps what the reports need besides the flows: the decode buckets
(every frame accounted for), what each capture file said about itself, and
the capture's health (one-way TCP, drops, truncation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from portmatrix.decode import decode
from portmatrix.decode.batch import DecodeCounts
from portmatrix.decode.transport import TCP
from portmatrix.flows import ACK, Flows, FlowTable
from portmatrix.sources import Capture
from portmatrix.sources.base import CaptureInfo


@dataclass
class Traffic:
    flows: Flows
    counts: DecodeCounts
    captures: list[CaptureInfo] = field(default_factory=list)
    collisions: int = 0

    @property
    def packets(self) -> int:
        return self.counts.frames

    @property
    def drops(self) -> int:
        return sum(c.drops for c in self.captures)

    @property
    def tcp_flows(self) -> int:
        return int((self.flows["proto"] == TCP).sum())

    @property
    def tcp_one_way(self) -> int:
        """TCP flows seen from one side only although that side acknowledged the other:
        the capture missed half the traffic (a span mirroring one direction). An
        unanswered SYN is not one of them: it sends no ACK."""
        f = self.flows
        tcp = f["proto"] == TCP
        fwd_only = (f["pkts_rev"] == 0) & ((f["flags_fwd"] & ACK) != 0)
        rev_only = (f["pkts_fwd"] == 0) & ((f["flags_rev"] & ACK) != 0)
        return int((tcp & (fwd_only | rev_only)).sum())

    @property
    def mostly_one_way(self) -> bool:
        return self.tcp_flows >= 4 and self.tcp_one_way * 2 > self.tcp_flows

    @property
    def weakened(self) -> bool:
        """Missing or unreachable services may just be traffic the capture did not see."""
        return bool(self.drops) or self.mostly_one_way

    @property
    def first_ts(self) -> int | None:
        return int(self.flows["first_ts"].min()) if len(self.flows) else None

    @property
    def last_ts(self) -> int | None:
        return int(self.flows["last_ts"].max()) if len(self.flows) else None

    def notices(self) -> list[str]:
        """What weakens conclusions drawn from this traffic, one sentence each."""
        out = []
        for cap in self.captures:
            if cap.truncated:
                out.append(f"{cap.path}: {cap.truncated}")
            out += [f"{cap.path}: {n}" for n in cap.notices]
        if self.drops:
            out.append(f"the capture reports {self.drops} dropped packets")
        if self.mostly_one_way:
            out.append(
                f"{self.tcp_one_way} of {self.tcp_flows} TCP flows were seen in one "
                "direction only: the capture may see half the traffic (span port "
                "mirroring one side?)"
            )
        if self.flows.fragments_unresolved:
            out.append(
                f"{self.flows.fragments_unresolved} IP fragments came without their "
                "first fragment: counted in port-0 flows"
            )
        if self.counts.l4_truncated:
            out.append(
                f"{self.counts.l4_truncated} TCP packets were cut by the snaplen before their flags"
            )
        if self.counts.inner_undecodable:
            out.append(
                f"{self.counts.inner_undecodable} tunnelled packets could not be "
                "decoded (their outer packets were)"
            )
        return out


def read_traffic(paths: list[str], on_batch: Callable[[int, int], None] | None = None) -> Traffic:
    """Read capture files in order into one flow table.

    Files are merged in the order given, so a flow that spans two consecutive
    files of a rolling capture is one flow. `on_batch(bytes, packets)` reports
    progress.
    """
    table = FlowTable()
    counts = DecodeCounts()
    infos = []
    for file_id, path in enumerate(paths):
        capture = Capture(path)
        part = FlowTable(file_id=file_id)
        for raw in capture.batches():
            rows, batch_counts = decode(raw)
            counts.add(batch_counts)
            part.update(rows)
            if on_batch:
                on_batch(int(raw.caplen.sum() + 16 * len(raw)), len(raw))
        table.merge(part)
        infos.append(capture.info)
    counts.check()
    return Traffic(flows=table.finish(), counts=counts, captures=infos, collisions=table.collisions)
