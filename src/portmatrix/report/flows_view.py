"""`portmatrix flows`: the flow table as a text table, CSV, JSON or JSON lines.

Every format ends with (or includes) the decode buckets, so every frame read
is accounted for, and any notice about the capture (cut short, drops, one-way).
"""

from __future__ import annotations

import csv
import io

from portmatrix.report import escape
from portmatrix.report.flow_rows import COLUMNS, rows
from portmatrix.report.summary import decode_document, decode_summary, inputs_summary
from portmatrix.textforms import json_text

COLUMN_SET = set(COLUMNS)
WIDE = ("app_details",)  # columns the text table leaves to the other formats


def render_table(columns: dict[str, list], traffic) -> str:
    shown = (
        "proto",
        "initiator",
        "initiator_port",
        "responder",
        "responder_port",
        "packets_fwd",
        "packets_rev",
        "outcome",
        "initiator_by",
    )
    heads = ("proto", "initiator", "port", "responder", "port", "pkts>", "pkts<", "outcome", "by")
    extra = [c for c in columns if c not in COLUMN_SET and c not in WIDE]
    shown += tuple(extra)
    heads += tuple(extra)
    cells = [[escape.visible(str(v)) for v in columns[c]] for c in shown]
    widths = [max([len(h)] + [len(x) for x in col]) for h, col in zip(heads, cells, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip()]
    for values in zip(*cells, strict=True):
        lines.append("  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip())
    lines.append("")
    flows, records = len(columns["proto"]), "records" in columns
    lines += [escape.visible(line) for line in summary_lines(traffic, flows, records)]
    return "\n".join(lines) + "\n"


def summary_lines(traffic, flows: int, records: bool = False) -> list[str]:
    """The lines under the table; `records`: the flows come from flow records."""
    read = sum(c.frames for c in traffic.captures) if records else traffic.packets
    noun = "records" if records else "frames"
    out = [f"{flows} flows from {read} {noun} in {len(traffic.captures)} file(s)"]
    if not records:  # flow records decode no packets: what was skipped is a notice
        out += [f"  {line}" for line in decode_summary(traffic.counts)]
    if traffic.filters:
        out.append(f"filters: {traffic.filters.text()}")
    out += [f"notice: {n}" for n in traffic.notices()]
    return out


def render_csv(columns: dict[str, list], traffic) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(escape.csv_row(row) for row in zip(*columns.values(), strict=True))
    return out.getvalue()


def render_json(columns: dict[str, list], traffic) -> str:
    doc = {
        "filters": traffic.filters.describe() if traffic.filters else {},
        "inputs": inputs_summary(traffic),
        "flows": rows(columns),
        "decode": decode_document(traffic.counts),
        "notices": traffic.notices(),
    }
    return escape.json_text(json_text(doc)) + "\n"


ECS_TRANSPORT = {"icmpv6": "ipv6-icmp"}
ECS_OUTCOME = {"established": "success", "midstream": "unknown"}  # else failure


def render_jsonl(columns: dict[str, list], traffic) -> str:
    """One Elastic Common Schema event per flow (SIEMs), the export's columns kept
    under `portmatrix`; `network.community_id` to pivot to Zeek, Suricata, Arkime."""
    from portmatrix.flows.community import community_ids
    from portmatrix.report.formats import ECS_VERSION, UNNAMED, observer

    seen_by = observer()
    ids = community_ids(traffic.flows)
    out = []
    for r, cid in zip(rows(columns), ids, strict=True):
        proto = r["proto"]
        ported = proto in ("tcp", "udp", "sctp")
        event = {
            "@timestamp": r["first_seen"],
            "ecs": {"version": ECS_VERSION},
            "event": {
                "kind": "event",
                "category": ["network"],
                "type": ["connection"],
                "outcome": ECS_OUTCOME.get(r["outcome"], "failure"),
                "action": r["outcome"],
                "dataset": "portmatrix.flows",
                "module": "portmatrix",
                "start": r["first_seen"],
                "end": r["last_seen"],
            },
            "source": {
                "ip": r["initiator"],
                "address": r["initiator"],
                "packets": r["packets_fwd"],
                "bytes": r["bytes_fwd"],
            },
            "destination": {
                "ip": r["responder"],
                "address": r["responder"],
                "packets": r["packets_rev"],
                "bytes": r["bytes_rev"],
            },
            "network": {
                "transport": ECS_TRANSPORT.get(proto, proto),
                "type": "ipv6" if ":" in r["initiator"] else "ipv4",
                "packets": r["packets_fwd"] + r["packets_rev"],
                "bytes": r["bytes_fwd"] + r["bytes_rev"],
            },
            "observer": seen_by,
            "portmatrix": r,
        }
        if ported:
            event["source"]["port"] = r["initiator_port"]
            event["destination"]["port"] = r["responder_port"]
        if cid:
            event["network"]["community_id"] = cid
        if r.get("app") and r["app"] not in UNNAMED:
            event["network"]["protocol"] = r["app"]
        if r["interface"]:
            event["observer"] = seen_by | {"ingress": {"interface": {"name": r["interface"]}}}
        if "rule" in r:
            event["rule"] = {"id": r["rule"] or r["verdict"], "name": r["verdict"]}
        out.append(escape.json_line(event) + "\n")
    return "".join(out)


FORMATS = {"table": render_table, "csv": render_csv, "json": render_json, "jsonl": render_jsonl}
