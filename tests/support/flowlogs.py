"""Synthetic cloud flow logs built from a capture's flows, as each provider would
have logged that traffic (docs/flow-records.md): the oracle the flow-record
tests compare against the capture itself.

`logged(flows)` turns portmatrix's flows into one-direction records per
observer and window (`Rec`); the writers lay records out in each provider's
format. Records are Python objects here on purpose: a slow, obvious reference.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass, replace
from pathlib import Path

from portmatrix.addresses import to_text
from portmatrix.flows.model import Flows
from portmatrix.report.flow_rows import flow_columns, rows

FIN, SYN, RST, ACK = 1, 2, 4, 16
ICMP_TYPES = {1, 58}


@dataclass
class Rec:
    """One direction of one flow, at one observer, in one window."""

    src: str
    dst: str
    sport: int
    dport: int
    proto: int
    pkts: int
    nbytes: int
    start_ns: int
    end_ns: int
    flags: int  # AWS semantics: FIN 1, SYN 2, RST 4, SYN-ACK 18 (ACK only with SYN)
    opener: bool  # the sender initiated the flow
    observer: str = "eni-0000000000000000a"
    action: str = "ACCEPT"
    answer_pkts: int = 0  # Azure/GCP writers: the other direction's counters
    answer_bytes: int = 0

    @property
    def start_s(self) -> int:
        return self.start_ns // 1_000_000_000

    @property
    def end_s(self) -> int:
        return -(-self.end_ns // 1_000_000_000)


def logged(flows: Flows, observers=("eni-0a0a0a0a0a0a0a0a0",)) -> list[Rec]:
    """Each flow as records: its initiator's direction, and the responder's when it
    sent anything; an ICMP error answering a flow as an ICMP record of its own
    (no provider ties it to the flow). One copy per observer."""
    out = []
    for i in range(len(flows)):
        f = {k: int(v[i]) for k, v in flows.cols.items()}
        init = to_text((f["init_hi"] << 64) | f["init_lo"])
        resp = to_text((f["resp_hi"] << 64) | f["resp_lo"])
        icmp = f["proto"] in ICMP_TYPES
        ports = (0, 0) if icmp else (f["init_port"], f["resp_port"])
        fwd_flags = f["flags_fwd"] & (FIN | SYN | RST)
        rev_flags = f["flags_rev"] & (FIN | RST)
        if f["flags_rev"] & SYN:
            rev_flags |= SYN | ACK  # the responder's SYN is a SYN-ACK
        common = dict(proto=f["proto"], start_ns=f["first_ts"], end_ns=f["last_ts"])
        recs = []
        if f["pkts_fwd"]:
            recs.append(
                Rec(
                    init,
                    resp,
                    *ports,
                    pkts=f["pkts_fwd"],
                    nbytes=f["bytes_fwd"],
                    flags=fwd_flags,
                    opener=True,
                    answer_pkts=f["pkts_rev"],
                    answer_bytes=f["bytes_rev"],
                    **common,
                )
            )
        if f["pkts_rev"]:
            recs.append(
                Rec(
                    resp,
                    init,
                    ports[1],
                    ports[0],
                    pkts=f["pkts_rev"],
                    nbytes=f["bytes_rev"],
                    flags=rev_flags,
                    opener=False,
                    **common,
                )
            )
        if f["icmp_err_type"] >= 0:  # the error answering it: an ICMP flow apart
            proto = 1 if ":" not in init else 58
            recs.append(
                Rec(
                    resp,
                    init,
                    0,
                    0,
                    proto=proto,
                    pkts=1,
                    nbytes=56,
                    start_ns=f["last_ts"],
                    end_ns=f["last_ts"],
                    flags=0,
                    opener=False,
                )
            )
        for observer in observers:
            out += [replace(r, observer=observer) for r in recs]
    return out


# AWS ------------------------------------------------------------------------------

from portmatrix.records.aws import DEFAULT  # noqa: E402

V5 = (
    *DEFAULT,
    *("vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr"),
    *("region", "az-id", "sublocation-type", "sublocation-id", "pkt-src-aws-service"),
    *("pkt-dst-aws-service", "flow-direction", "traffic-path"),
)


def aws_values(r: Rec) -> dict[str, str]:
    return {
        "version": "5",
        "account-id": "123456789012",
        "interface-id": r.observer,
        "srcaddr": r.src,
        "dstaddr": r.dst,
        "srcport": str(r.sport),
        "dstport": str(r.dport),
        "protocol": str(r.proto),
        "packets": str(r.pkts),
        "bytes": str(r.nbytes),
        "start": str(r.start_s),
        "end": str(r.end_s),
        "action": r.action,
        "log-status": "OK",
        "vpc-id": "vpc-0123456789abcdef0",
        "subnet-id": "subnet-0123456789abcdef0",
        "instance-id": "i-0123456789abcdef0",
        "tcp-flags": str(r.flags) if r.proto == 6 else "0",
        "type": "IPv6" if ":" in r.src else "IPv4",
        "pkt-srcaddr": r.src,
        "pkt-dstaddr": r.dst,
        "region": "eu-west-1",
        "az-id": "euw1-az1",
        "sublocation-type": "-",
        "sublocation-id": "-",
        "pkt-src-aws-service": "-",
        "pkt-dst-aws-service": "-",
        "flow-direction": "egress",
        "traffic-path": "1",
    }


def aws_text(records: list[Rec], fields=V5, header: bool = True, extra: list[str] = ()) -> str:
    lines = [" ".join(fields)] if header else []
    lines += [" ".join(aws_values(r)[k] for k in fields) for r in records]
    lines += list(extra)
    return "\n".join(lines) + "\n"


def write_aws(path: Path, records: list[Rec], **kw) -> Path:
    text = aws_text(records, **kw)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def write_aws_parquet(path: Path, records: list[Rec]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ints = {"srcport", "dstport", "protocol", "packets", "bytes", "start", "end", "tcp-flags"}
    rows = [aws_values(r) for r in records]
    columns = {
        k.replace("-", "_"): pa.array(
            [int(row[k]) for row in rows] if k in ints else [row[k] for row in rows]
        )
        for k in V5
    }
    pq.write_table(pa.table(columns), path)
    return path


# Azure ----------------------------------------------------------------------------


def azure_tuples(records: list[Rec], vnet: bool = True) -> dict[str, list[str]]:
    """Tuples per observer (NIC): one per flow (the initiator's record names it), B
    at its start and E at its end with the counters both ways."""
    out: dict[str, list[str]] = {}
    for r in records:
        if not r.opener:
            continue
        denied = r.action == "REJECT"
        begin_ts = r.start_ns // 1_000_000 if vnet else r.start_s
        end_ts = r.end_ns // 1_000_000 if vnet else r.end_s
        proto = str(r.proto) if vnet else {6: "T", 17: "U"}.get(r.proto)
        if proto is None:
            continue  # NSG logs know TCP and UDP only
        head = f"{r.src},{r.dst},{r.sport},{r.dport},{proto},O"
        counts = f"{r.pkts},{r.nbytes},{r.answer_pkts},{r.answer_bytes}"
        if vnet:
            rows = (
                [f"{begin_ts},{head},D,NX,{counts}"]
                if denied
                else [f"{begin_ts},{head},B,NX,,,,", f"{end_ts},{head},E,NX,{counts}"]
            )
        else:
            decision = "D" if denied else "A"
            rows = [f"{begin_ts},{head},{decision},B,,,,", f"{end_ts},{head},{decision},E,{counts}"]
        out.setdefault(r.observer, []).extend(rows)
    return out


def write_azure(path: Path, records: list[Rec], vnet: bool = True) -> Path:
    docs = []
    for nic, tuples in azure_tuples(records, vnet).items():
        mac = "00224871C" + format(abs(hash(nic)) % 0xFFF, "03X")
        if vnet:
            docs.append(
                {
                    "time": "2024-03-01T10:01:00.0000000Z",
                    "flowLogVersion": 4,
                    "flowLogGUID": "66aa66aa-bb77-cc88-dd99-00ee00ee00ee",
                    "macAddress": mac,
                    "category": "FlowLogFlowEvent",
                    "flowLogResourceID": "/SUBSCRIPTIONS/0/FLOWLOGS/FL",
                    "targetResourceID": f"/subscriptions/0/nic/{nic}",
                    "operationName": "FlowLogFlowEvent",
                    "flowRecords": {
                        "flows": [
                            {
                                "aclID": "00000000-1234",
                                "flowGroups": [
                                    {"rule": "DefaultRule_AllowVnetOutBound", "flowTuples": tuples}
                                ],
                            }
                        ]
                    },
                }
            )
        else:
            docs.append(
                {
                    "time": "2024-03-01T10:01:00.0000000Z",
                    "systemId": "66aa66aa-bb77-cc88-dd99-00ee00ee00ee",
                    "macAddress": mac,
                    "category": "NetworkSecurityGroupFlowEvent",
                    "resourceId": "/SUBSCRIPTIONS/0/NSG/NSG1",
                    "operationName": "NetworkSecurityGroupFlowEvents",
                    "properties": {
                        "Version": 2,
                        "flows": [
                            {
                                "rule": "DefaultRule_AllowVnetOutBound",
                                "flows": [{"mac": mac, "flowTuples": tuples}],
                            }
                        ],
                    },
                }
            )
    path.write_text(json.dumps({"records": docs}))
    return path


# GCP ------------------------------------------------------------------------------


def _rfc3339(ns: int) -> str:
    import datetime as dt

    seconds, rest = divmod(ns, 1_000_000_000)
    when = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{when}.{rest:09d}Z"


def gcp_entry(r: Rec, reporter: str = "SRC") -> dict:
    vm = r.observer
    return {
        "insertId": f"{random.random():.12f}",
        "jsonPayload": {
            "bytes_sent": str(r.nbytes),
            "packets_sent": str(r.pkts),
            "connection": {
                "src_ip": r.src,
                "src_port": r.sport,
                "dest_ip": r.dst,
                "dest_port": r.dport,
                "protocol": r.proto,
            },
            "reporter": reporter,
            "start_time": _rfc3339(r.start_ns),
            "end_time": _rfc3339(r.end_ns),
            ("src_instance" if reporter == "SRC" else "dest_instance"): {
                "vm_name": vm,
                "project_id": "p",
                "zone": "europe-west1-b",
            },
        },
        "logName": "projects/p/logs/compute.googleapis.com%2Fvpc_flows",
        "resource": {"type": "gce_subnetwork", "labels": {"subnetwork_name": "default"}},
        "timestamp": _rfc3339(r.end_ns),
    }


def write_gcp(path: Path, records: list[Rec], array: bool = False) -> Path:
    entries = [gcp_entry(r) for r in records]
    if array:
        path.write_text(json.dumps(entries, indent=1))
    else:
        path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


JUDGED = ("initiator", "responder", "responder_port", "packets_fwd", "packets_rev")
JUDGED += ("outcome", "initiator_by")


def judged_flows(traffic, columns=JUDGED) -> list[tuple]:
    """What the readers decided of each flow, sorted: who initiated, to which port,
    the packets each way, the outcome and how the initiator was known."""
    return sorted(tuple(r[c] for c in columns) for r in rows(flow_columns(traffic.flows)))
