"""The finished flows: the contract between flow building and everything after it.

Every producer of flows — captures (`orient.from_records`), Zeek's conn.log,
other flow records — fills the columns declared here, once; a producer that
cannot know a column leaves it to its `missing` value, and the reports read
that as "unknown". Flows are oriented: `init_*` is the initiator, `resp_*` the
responder; `fwd` is what the initiator sent, `rev` what the responder sent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

OUTCOMES = ("established", "refused", "unanswered", "midstream", "blocked")
"""What came of a flow, read from the wire:
established: the responder answered; refused: RST to the SYN, or an ICMP
unreachable answering the initiator; unanswered: a SYN or request with no
reply; midstream: the handshake was not captured (or, for flow records, the
record does not say what came of it); blocked: a flow record says a cloud
security group, network ACL or firewall dropped it (AWS `REJECT`, Azure `D`,
NetFlow's forwarding status "dropped") and no answer got through. Blocked
counts as a failed attempt, as refused does.
"""
ESTABLISHED, REFUSED, UNANSWERED, MIDSTREAM, BLOCKED = range(5)

CLOSES = ("open", "fin", "rst", "")  # "" for flows that are not TCP
NOT_TCP = 3

INITIATOR_BY = ("syn", "syn-ack", "port", "first-packet", "request", "quoted", "record")
"""How a flow's initiator was decided:
syn: a pure SYN was seen; syn-ack: only the SYN-ACK was seen (its receiver opened);
port: started mid-stream, the side using a service port taken as responder (as Zeek
does); first-packet: nothing better, the sender of the first packet; request: the
sender of an ICMP query (echo request, ...); quoted: only an ICMP error quoting the
flow's packet was seen, the quoted packet's sender; record: the flow record names
the initiator from the exporter's own connection tracking (an Azure flow tuple's
source).
"""
BY_SYN, BY_SYNACK, BY_PORT, BY_FIRST, BY_REQUEST, BY_QUOTED, BY_RECORD = range(7)

FRAMES = 3  # first frames kept per flow, for evidence


class Column(NamedTuple):
    dtype: type  # as narrow as the values allow: a flow costs ~150 bytes in memory
    missing: int  # what a producer that cannot know the column fills in
    doc: str


FLOW_COLUMNS: dict[str, Column] = {
    "proto": Column(np.int16, 0, "IP protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6, ...)"),
    "init_hi": Column(np.uint64, 0, "initiator address, upper 64 bits (IPv4 mapped into IPv6)"),
    "init_lo": Column(np.uint64, 0, "initiator address, lower 64 bits"),
    "resp_hi": Column(np.uint64, 0, "responder address, upper 64 bits"),
    "resp_lo": Column(np.uint64, 0, "responder address, lower 64 bits"),
    "init_port": Column(np.int32, 0, "initiator's port; for ICMP queries the identifier"),
    "resp_port": Column(np.int32, 0, "responder's port; for ICMP queries the identifier"),
    "icmp_req": Column(np.int16, -1, "ICMP flows: the query type they pair on, else -1"),
    "first_ts": Column(np.int64, 0, "first packet, ns since the epoch (UTC)"),
    "last_ts": Column(np.int64, 0, "last packet, ns since the epoch (UTC)"),
    "pkts_fwd": Column(np.int64, 0, "packets the initiator sent"),
    "pkts_rev": Column(np.int64, 0, "packets the responder sent"),
    "bytes_fwd": Column(np.int64, 0, "bytes on the wire the initiator sent"),
    "bytes_rev": Column(np.int64, 0, "bytes on the wire the responder sent"),
    "flags_fwd": Column(np.int16, 0, "TCP flags the initiator sent, OR-ed (0: unknown)"),
    "flags_rev": Column(np.int16, 0, "TCP flags the responder sent, OR-ed (0: unknown)"),
    "outcome": Column(np.int8, MIDSTREAM, "index into OUTCOMES"),
    "close": Column(np.int8, NOT_TCP, "index into CLOSES"),
    "initiator_by": Column(np.int8, BY_FIRST, "index into INITIATOR_BY"),
    "icmp_err_type": Column(np.int16, -1, "type of the first ICMP error about the flow, -1 none"),
    "icmp_err_code": Column(np.int16, -1, "its code, -1 none"),
    "vlan_lo": Column(np.int16, -1, "lowest outer VLAN id seen, -1 untagged or unknown"),
    "vlan_hi": Column(np.int16, -1, "highest outer VLAN id seen"),
    "encap": Column(np.uint8, 0, "tunnel the packets were found in (decode.batch.ENCAPS)"),
    "iface": Column(np.int32, -1, "capture interface index of the first packet, -1 unknown"),
    "records": Column(np.int32, 0, "flow records the flow was joined from, 0 built from packets"),
    **{
        f"frame{i}": Column(np.int64, -1, f"frame number of the flow's packet {i + 1}, -1 none")
        for i in range(FRAMES)
    },
    **{
        f"file{i}": Column(np.int32, -1, f"index of the input holding frame{i}, -1 none")
        for i in range(FRAMES)
    },
}


@dataclass
class Flows:
    """Finished flows: the FLOW_COLUMNS, all of one length."""

    cols: dict[str, np.ndarray]
    fragments_unresolved: int = 0  # IP fragments that never met their first fragment
    fragments_incomplete: int = 0  # datagrams whose fragments never covered them
    fragments_overlapping: int = 0  # datagrams whose fragments overlapped

    def __post_init__(self) -> None:
        # A column a producer does not know (a newer one: `records`) is at its `missing` value.
        absent = [name for name in FLOW_COLUMNS if name not in self.cols]
        if absent and "proto" in self.cols:
            n = len(self.cols["proto"])
            for name in absent:
                col = FLOW_COLUMNS[name]
                self.cols[name] = np.full(n, col.missing, col.dtype)

    def __len__(self) -> int:
        return len(self.cols["proto"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]

    def take(self, index: np.ndarray) -> Flows:
        """The flows at `index` (indices or a boolean mask)."""
        return replace(self, cols={k: v[index] for k, v in self.cols.items()})

    @classmethod
    def from_columns(cls, given: dict[str, np.ndarray]) -> Flows:
        """Flows from a producer that knows only some columns: the rest are filled
        with their `missing` value, and every column gets its declared dtype."""
        unknown = set(given) - set(FLOW_COLUMNS)
        if unknown:  # a producer's bug, never bad input
            raise ValueError(f"not flow columns: {', '.join(sorted(unknown))}")
        n = len(given["proto"])
        cols = {
            name: (
                np.asarray(given[name]).astype(col.dtype, copy=False)
                if name in given
                else np.full(n, col.missing, col.dtype)
            )
            for name, col in FLOW_COLUMNS.items()
        }
        return cls(cols)
