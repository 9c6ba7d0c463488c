"""Flows as rows of text fields, the shared form of every flow export.

Columns, in order (DESIGN.md "Flows"):
  proto           tcp, udp, icmp, icmpv6, sctp, or the IP protocol number
  initiator       address of the side that opened the flow
  initiator_port  its port (ICMP: the type that opens the exchange, as Zeek does)
  responder       address of the other side
  responder_port  its port (ICMP: the code, 0)
  first_seen      ISO 8601 UTC, microseconds
  last_seen
  packets_fwd     packets sent by the initiator; packets_rev by the responder
  packets_rev
  bytes_fwd       frame bytes on the wire, likewise
  bytes_rev
  outcome         established | refused | unanswered | midstream | blocked
  close           fin | rst | open ("" when not TCP)
  initiator_by    syn | syn-ack | port | first-packet | request | quoted | record
  vlan            outer VLAN id(s) seen ("10", "10,20": lowest and highest), "" untagged
  icmp_error      type/code of an ICMP error answering the flow, "" none
  encap           the tunnel the flow was inside (gre, vxlan, ...), "" none
  frames          first frame numbers of the flow (for evidence), "file:frame" when
                  several files were read. An ICMP error tied to the flow is among its
                  frames but, as in tshark's conversation table, not in its packets.
  interface       the capture interface the flow was first seen on (pcapng if_name), ""
                  when the capture does not name it
"""

from __future__ import annotations

import numpy as np

from portmatrix.decode.batch import ENCAPS
from portmatrix.flows.model import CLOSES, INITIATOR_BY, OUTCOMES, Flows
from portmatrix.textforms import address_texts, iso, proto_name

COLUMNS = (
    "proto",
    "initiator",
    "initiator_port",
    "responder",
    "responder_port",
    "first_seen",
    "last_seen",
    "packets_fwd",
    "packets_rev",
    "bytes_fwd",
    "bytes_rev",
    "outcome",
    "close",
    "initiator_by",
    "vlan",
    "icmp_error",
    "encap",
    "frames",
    "interface",
)


def flow_columns(flows: Flows, several_files: bool = False, captures=None) -> dict[str, list]:
    """Every export column as a list (numbers stay numbers). `captures` (the inputs'
    CaptureInfo, in file order) names the interfaces."""
    f = flows
    n = len(f)
    icmp = np.isin(f["proto"], (1, 58))
    init_port = np.where(icmp, f["icmp_req"], f["init_port"])
    resp_port = np.where(icmp, 0, f["resp_port"])
    vlan = []
    for lo, hi in zip(f["vlan_lo"].tolist(), f["vlan_hi"].tolist(), strict=True):
        vlan.append("" if hi < 0 else str(lo) if lo == hi else f"{lo},{hi}")
    err = [
        ("" if t < 0 else f"{t}/{c}")
        for t, c in zip(f["icmp_err_type"].tolist(), f["icmp_err_code"].tolist(), strict=True)
    ]
    frames = []
    for i in range(n):
        parts = []
        for j in range(3):
            frame, file = int(f[f"frame{j}"][i]), int(f[f"file{j}"][i])
            if frame >= 0:
                parts.append(f"{file}:{frame}" if several_files else str(frame))
        frames.append(" ".join(parts))
    return {
        "proto": [proto_name(p) for p in f["proto"].tolist()],
        "initiator": address_texts(f["init_hi"], f["init_lo"]),
        "initiator_port": init_port.tolist(),
        "responder": address_texts(f["resp_hi"], f["resp_lo"]),
        "responder_port": resp_port.tolist(),
        "first_seen": iso(f["first_ts"]).tolist(),
        "last_seen": iso(f["last_ts"]).tolist(),
        "packets_fwd": f["pkts_fwd"].tolist(),
        "packets_rev": f["pkts_rev"].tolist(),
        "bytes_fwd": f["bytes_fwd"].tolist(),
        "bytes_rev": f["bytes_rev"].tolist(),
        "outcome": [OUTCOMES[o] for o in f["outcome"].tolist()],
        "close": [CLOSES[c] for c in f["close"].tolist()],
        "initiator_by": [INITIATOR_BY[b] for b in f["initiator_by"].tolist()],
        "vlan": vlan,
        "icmp_error": err,
        "encap": [ENCAPS[e] for e in f["encap"].tolist()],
        "frames": frames,
        "interface": _interface_names(f, captures),
    }


def _interface_names(f: Flows, captures) -> list[str]:
    """The name of the interface each flow was first seen on ("" when unnamed)."""
    names: dict[tuple[int, int], str] = {}
    for file, cap in enumerate(captures or ()):
        for i, iface in enumerate(cap.interfaces):
            names[(file, i)] = iface.name
    return [
        names.get((file, iface), "")
        for file, iface in zip(f["file0"].tolist(), f["iface"].tolist(), strict=True)
    ]


def rows(columns: dict[str, list]) -> list[dict]:
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
