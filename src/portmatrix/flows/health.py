"""How far a capture can be trusted: one-way TCP, drops, truncation, unresolved
fragments. Conclusions about missing services are weakened by any of them,
and the notices say so. Shared by the offline check and live watching.
"""

from __future__ import annotations

from portmatrix.decode.batch import MAX_EXT, MAX_LAYERS, MAX_TUNNELS
from portmatrix.decode.transport import TCP
from portmatrix.flows.model import Flows
from portmatrix.flows.records import ACK


def one_way_tcp(flows: Flows) -> int:
    """TCP flows seen from one side only although that side acknowledged the other:
    the capture missed half the traffic (a span mirroring one direction). An
    unanswered SYN is not one of them: it sends no ACK."""
    tcp = flows["proto"] == TCP
    fwd_only = (flows["pkts_rev"] == 0) & ((flows["flags_fwd"] & ACK) != 0)
    rev_only = (flows["pkts_fwd"] == 0) & ((flows["flags_rev"] & ACK) != 0)
    return int((tcp & (fwd_only | rev_only)).sum())


class CaptureHealth:
    """How far conclusions about missing services can be trusted, and the notices
    that say so (needs `captures`, `drops`, `counts`, `tcp_flows`, `tcp_one_way`,
    the `fragments_*` counts and `remarks`, sentences a command adds)."""

    @property
    def mostly_one_way(self) -> bool:
        return self.tcp_flows >= 4 and self.tcp_one_way * 2 > self.tcp_flows

    @property
    def weakened(self) -> bool:
        """Missing or unreachable services may just be traffic the capture did not see."""
        gaps = any(c.gaps for c in self.captures)  # flow records: windows not logged
        return bool(self.drops) or self.mostly_one_way or gaps

    def notices(self) -> list[str]:
        """What weakens conclusions drawn from this traffic, one sentence each."""
        out = list(self.remarks)
        for cap in self.captures:
            if cap.unreadable is not None:
                out.append(f"not read: {cap.unreadable}")
                continue
            if not cap.frames and not cap.truncated:
                out.append(f"{cap.path}: empty: it holds no packets")
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
        if self.fragments_unresolved:
            out.append(
                f"{self.fragments_unresolved} IP fragments came without their "
                "first fragment: counted in port-0 flows"
            )
        if self.fragments_incomplete:
            out.append(
                f"{self.fragments_incomplete} fragmented IP datagrams never arrived "
                "whole (a fragment lost or not captured)"
            )
        if self.fragments_overlapping:
            out.append(
                f"{self.fragments_overlapping} fragmented IP datagrams had overlapping "
                "fragments (invalid in IPv6; an evasion technique)"
            )
        if self.counts.l4_truncated:
            out.append(
                f"{self.counts.l4_truncated} TCP packets were cut by the snaplen before their flags"
            )
        if self.counts.inner_undecodable:
            deep = self.counts.inner_too_deep
            out.append(
                f"{self.counts.inner_undecodable} tunnelled packets could not be "
                "decoded (their outer packets were)"
                + (
                    f"; {deep} of them were deeper than portmatrix decodes ({MAX_TUNNELS} "
                    f"tunnels, {MAX_LAYERS} tags or labels, {MAX_EXT} IPv6 extension headers)"
                    if deep
                    else ""
                )
            )
        return out
