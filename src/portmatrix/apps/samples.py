"""The first packets of chosen flows, read again from the captures: what their
application labels are made from.

The selection is evidence's (`evidence.flow_rows`: a packet belongs to a flow by
its key and time span), cut to each flow's first FIRST_PACKETS packets — the
handshake and the first messages both ways — and the reading stops as soon as
every chosen flow has them. Each flow's payloads are joined per side into a
`signatures.Sample`; the frames themselves are kept for tshark.
"""

from __future__ import annotations

import contextlib
import struct
from dataclasses import dataclass, field

import numpy as np

from portmatrix.apps.signatures import SAMPLE, Sample
from portmatrix.decode.batch import PACKET
from portmatrix.decode.payload import payloads, readable
from portmatrix.evidence import Packet, flow_rows
from portmatrix.flows.model import Flows
from portmatrix.textforms import proto_name

FIRST_PACKETS = 10
NEUTRAL_PORTS = (62, 61)  # (initiator, responder): no dissector registered on either


@dataclass
class Samples:
    """Per chosen flow: its Sample; the frames read, each with its flow's index."""

    samples: list[Sample]
    packets: list[Packet] = field(default_factory=list)  # readable ones, ports hidden
    flow_of_packet: list[int] = field(default_factory=list)
    infos: list = field(default_factory=list)  # CaptureInfo of each capture read
    unread: set[int] = field(default_factory=set)  # flows with packets whose payload
    # could not be found (inside a tunnel, a later IP fragment)


def read_samples(paths: list[str], chosen: Flows, on_batch=None) -> Samples:
    """The first packets of each `chosen` flow from the captures, and their payloads.

    The packets kept for tshark have their ports replaced (NEUTRAL_PORTS: ports no
    Wireshark dissector is registered on): what it names then, it named from the
    payload, never from the port."""
    out = Samples([Sample(proto_name(int(p))) for p in chosen["proto"].tolist()])
    client = [bytearray() for _ in range(len(chosen))]
    server = [bytearray() for _ in range(len(chosen))]
    if not len(chosen):
        return out
    # The digests are the first read's: this read only looks at payloads.
    parts = flow_rows(paths, chosen, out.infos, FIRST_PACKETS, on_batch, digest=False)
    with contextlib.closing(parts):  # on every path now, not by the collector
        for part in parts:
            raw, rows, flow = part.raw, part.rows, part.flow
            ok = readable(rows)
            found = payloads(raw, rows, np.flatnonzero(ok))
            at = np.cumsum(ok) - 1  # row -> its place in `found`
            from_init = (
                (rows.src_hi == chosen["init_hi"][flow])
                & (rows.src_lo == chosen["init_lo"][flow])
                & (rows.sport == chosen["init_port"][flow])
            )
            unread = ~ok & (rows.kind == PACKET)
            out.unread.update(flow[unread].tolist())
            readable_rows = np.flatnonzero(ok)
            frame_at = np.searchsorted(raw.frame, rows.frame[readable_rows])
            for row, i in zip(readable_rows.tolist(), frame_at.tolist(), strict=True):
                off, cap = int(raw.offset[i]), int(raw.caplen[i])
                data = bytearray(raw.data[off : off + cap].tobytes())
                pos = int(found.transport[at[row]]) - off
                ports = NEUTRAL_PORTS if from_init[row] else NEUTRAL_PORTS[::-1]
                data[pos : pos + 4] = struct.pack(">HH", *ports)
                out.packets.append(Packet.of(raw, part.file_id, i, bytes(data)))
                out.flow_of_packet.append(int(flow[row]))
            for k in np.flatnonzero(found.size > 0).tolist():
                r = int(found.rows[k])
                side = client if from_init[r] else server
                buf = side[int(flow[r])]
                if len(buf) < SAMPLE:
                    buf += found.bytes_of(k, SAMPLE - len(buf))
    for sample, c, s in zip(out.samples, client, server, strict=True):
        sample.client, sample.server = bytes(c), bytes(s)
    return out
