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

Flows from flow records add `records` (how many source records each was joined
from); `check --flows` and `flows --app` add more (report/verdict_flows.py).
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


def flow_columns(
    flows: Flows, several_files: bool = False, captures=None, records: bool | None = None
) -> dict[str, list]:
    """Every export column as a list (numbers stay numbers). `captures` (the inputs'
    CaptureInfo, in file order) names the interfaces; `records`: the flows come from
    flow records, so the count of records per flow is a column (None: when any flow
    has one). Columns of text made of few distinct values (protocols, VLANs, ICMP
    errors, interfaces) are written once per distinct value; nothing here is a
    Python step per flow over numpy values."""
    f = flows
    icmp = np.isin(f["proto"], (1, 58))
    init_port = np.where(icmp, f["icmp_req"], f["init_port"])
    resp_port = np.where(icmp, 0, f["resp_port"])
    if records is None:
        records = bool(len(f)) and bool((f["records"] > 0).any())
    return {
        "proto": by_value(proto_name, f["proto"]),
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
        "outcome": by_value(OUTCOMES.__getitem__, f["outcome"]),
        "close": by_value(CLOSES.__getitem__, f["close"]),
        "initiator_by": by_value(INITIATOR_BY.__getitem__, f["initiator_by"]),
        "vlan": by_value(_vlan, f["vlan_lo"], f["vlan_hi"]),
        "icmp_error": by_value(_icmp_error, f["icmp_err_type"], f["icmp_err_code"]),
        "encap": by_value(ENCAPS.__getitem__, f["encap"]),
        "frames": _frames(f, several_files),
        "interface": _interface_names(f, captures),
        **({"records": f["records"].tolist()} if records else {}),
    }


def by_value(text, *cols: np.ndarray) -> list[str]:
    """text(*values) for each row, computed once per distinct tuple of values."""
    if not len(cols[0]):
        return []
    key = np.zeros(len(cols[0]), np.int64)
    lows = []
    for c in cols:  # small numbers: one int64 key per row
        lo, hi = int(c.min()), int(c.max())
        key = key * (hi - lo + 1) + (c.astype(np.int64) - lo)
        lows.append((lo, hi - lo + 1))
    uniq, inverse = np.unique(key, return_inverse=True)
    values = []
    for k in uniq.tolist():
        row = []
        for lo, span in reversed(lows):
            row.append(k % span + lo)
            k //= span
        values.append(text(*reversed(row)))
    return np.array(values, dtype=object)[inverse.reshape(-1)].tolist()


def _vlan(lo: int, hi: int) -> str:
    return "" if hi < 0 else str(lo) if lo == hi else f"{lo},{hi}"


def _icmp_error(kind: int, code: int) -> str:
    return "" if kind < 0 else f"{kind}/{code}"


def _frames(f: Flows, several_files: bool) -> list[str]:
    """The first frames of each flow, space-separated ("file:frame" across files)."""
    out = np.full(len(f), "", dtype=object)
    for j in range(3):
        frame = f[f"frame{j}"]
        has = frame >= 0
        text = frame.astype(str).astype(object)
        if several_files:
            text = f[f"file{j}"].astype(str).astype(object) + ":" + text
        out = np.where(has, np.where(out == "", text, out + " " + text), out)
    return out.tolist()


def _interface_names(f: Flows, captures) -> list[str]:
    """The name of the interface each flow was first seen on ("" when unnamed)."""
    names: dict[tuple[int, int], str] = {}
    for file, cap in enumerate(captures or ()):
        for i, iface in enumerate(cap.interfaces):
            names[(file, i)] = iface.name
    return by_value(lambda file, iface: names.get((file, iface), ""), f["file0"], f["iface"])


def rows(columns: dict[str, list]) -> list[dict]:
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
