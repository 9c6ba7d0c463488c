"""Traffic: the flows read from some inputs, with what the reports need besides
them: the decode buckets (every frame accounted for), what each input said
about itself, and the capture's health.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

from portmatrix.decode.batch import DecodeCounts
from portmatrix.decode.transport import TCP
from portmatrix.flows.health import CaptureHealth, one_way_tcp
from portmatrix.flows.model import Flows
from portmatrix.sources.base import CaptureInfo


@dataclass
class Traffic(CaptureHealth):
    flows: Flows
    counts: DecodeCounts
    captures: list[CaptureInfo] = field(default_factory=list)
    collisions: int = 0
    filters: object = None  # the FlowFilter the flows were narrowed by, if any
    remarks: list[str] = field(default_factory=list)  # said by the command: skipped files, ...

    def narrowed(self, filters) -> Traffic:
        """The same traffic with only the flows a FlowFilter's window, hosts and ports
        keep (a relative time counts from the capture's first packet)."""
        if not filters.active:
            return self
        keep = filters.traffic_mask(self.flows, self.first_ts)
        return replace(self, flows=self.flows.take(keep), filters=filters)

    @property
    def unreadable(self) -> list[Exception]:
        """The errors of the inputs that could not be read at all (the others were)."""
        return [c.unreadable for c in self.captures if c.unreadable is not None]

    @property
    def damaged(self) -> list[str]:
        """One error line per input that was not read whole: not at all (`unreadable`),
        or cut short or corrupt part way (what came before it was analyzed)."""
        out = [str(exc) for exc in self.unreadable]
        for cap in self.captures:
            if cap.truncated and cap.unreadable is None:
                out.append(
                    f"{cap.path}: {cap.truncated} — the report covers what came before; if "
                    "the file was still being written or copied, analyze the complete one"
                )
        return out

    @property
    def flow_count(self) -> int:
        return len(self.flows)

    @property
    def dns_names(self) -> dict[str, list[int]]:
        """Hostname -> addresses, from the DNS answers in all the captures."""
        names: dict[str, set[int]] = {}
        for info in self.captures:
            for name, addrs in info.dns.items():
                names.setdefault(name, set()).update(addrs)
        return {name: sorted(addrs) for name, addrs in names.items()}

    @cached_property
    def claims(self):
        """The role hostnames clients named (TLS SNI, HTTP Host, QUIC), all captures:
        `decode.names.Claims`."""
        from portmatrix.decode.names import Claims

        out = Claims()
        for info in self.captures:
            out.add(info.names)
        return out

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
        return one_way_tcp(self.flows)

    @property
    def fragments_unresolved(self) -> int:
        return self.flows.fragments_unresolved

    @property
    def fragments_incomplete(self) -> int:
        return self.flows.fragments_incomplete

    @property
    def fragments_overlapping(self) -> int:
        return self.flows.fragments_overlapping

    @property
    def first_ts(self) -> int | None:
        return int(self.flows["first_ts"].min()) if len(self.flows) else None

    @property
    def last_ts(self) -> int | None:
        return int(self.flows["last_ts"].max()) if len(self.flows) else None
