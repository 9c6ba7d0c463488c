"""Azure VNet flow logs (`records[].flowRecords.flows[].flowGroups[].flowTuples[]`)
and the older NSG flow logs (`records[].properties.flows[].flows[].flowTuples[]`,
versions 1 and 2), as Network Watcher writes them to blob storage (JSON).

A flow tuple is one connection seen at one network interface (its MAC address,
the observer) at one moment:

  VNet    ms,src,dst,sport,dport,proto,I|O,B|C|E|D,encryption,pkts→,bytes→,pkts←,bytes←
  NSG v2  s,src,dst,sport,dport,T|U,I|O,A|D,B|C|E,pkts→,bytes→,pkts←,bytes←
  NSG v1  s,src,dst,sport,dport,T|U,I|O,A|D

(→ source to destination, ← back)

The source is the initiator (Azure tracks the connection: `record`); B begins
a flow (no counters), C continues it, E ends it (counters since the last
tuple), D (or decision D) denies it: `blocked`. Counters in both directions
make a flow established, counters one way only unanswered. A TCP reset is a
packet like any other to these counters: only a lone answered packet (a
handshake takes the initiator two) is taken as refused.

The JSON is walked in Python only down to the tuple lists (a few per
interface and rule); the tuples themselves are parsed columnar.
"""

from __future__ import annotations

import json

import numpy as np

from portmatrix.decode.transport import TCP, UDP
from portmatrix.errors import CaptureError
from portmatrix.flows.model import BY_RECORD
from portmatrix.records import arrow
from portmatrix.records.directed import NS, constant, directed
from portmatrix.records.source import FileRead, observer_id, open_text

REMARK = (
    "Azure flow logs carry no TCP flags: a connection whose initiator sent one packet "
    "that was answered is taken as refused (a handshake takes two), and a reset after "
    "more than one packet reads as established"
)
BAD_TUPLE = "an address, the time or the protocol is malformed"
HINT = "give Azure VNet or NSG flow logs (JSON, as Network Watcher writes them)"

VNET = ("ts", "src", "dst", "sport", "dport", "proto", "dir", "state", "enc")
VNET += ("pkts_s2d", "bytes_s2d", "pkts_d2s", "bytes_d2s")
NSG2 = ("ts", "src", "dst", "sport", "dport", "proto", "dir", "decision", "state")
NSG2 += ("pkts_s2d", "bytes_s2d", "pkts_d2s", "bytes_d2s")
NSG1 = ("ts", "src", "dst", "sport", "dport", "proto", "dir", "decision")


def sniff(head: bytes) -> bool:
    start = head.lstrip()[:1]
    return start in (b"{", b"[") and (
        b"FlowLogFlowEvent" in head or b"NetworkSecurityGroupFlowEvent" in head
    )


def read(file_id: int, path: str, out: FileRead) -> None:
    out.format = "azure-flow"
    try:
        with open_text(path) as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        raise CaptureError(
            f"not JSON ({exc.msg})", file=path, where=f"line {exc.lineno}", hint=HINT
        ) from None
    except (EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise CaptureError(f"compressed data ends early ({exc})", file=path, hint=HINT) from None
    records = doc.get("records") if isinstance(doc, dict) else doc
    if not isinstance(records, list):
        raise CaptureError("no `records` list", file=path, hint=HINT)
    groups: dict[tuple[str, ...], tuple[list[str], list[int]]] = {}
    for number, record in enumerate(records, 1):
        try:
            _collect(record, groups)
        except (AttributeError, TypeError, KeyError, ValueError, OverflowError):
            out.damaged([f"record {number}"], "not a flow log record (no flow tuples)")
    for names, (tuples, observers) in groups.items():
        _parse(names, tuples, np.array(observers, np.uint64), file_id, out)
    out.check_any(HINT)


def _collect(record: dict, groups: dict) -> None:
    """The tuple strings of one record, by tuple layout, with their observer."""
    observer = observer_id(str(record.get("macAddress") or record.get("targetResourceID") or ""))
    if "flowRecords" in record:  # VNet flow logs
        for flow in record["flowRecords"].get("flows") or []:
            for group in flow.get("flowGroups") or []:
                _add(groups, VNET, group.get("flowTuples") or [], observer)
        return
    props = record["properties"]
    layout = NSG1 if int(props.get("Version", 2)) == 1 else NSG2
    for rule in props.get("flows") or []:
        for flow in rule.get("flows") or []:
            mac = flow.get("mac")
            seen = observer_id(str(mac)) if mac else observer
            _add(groups, layout, flow.get("flowTuples") or [], seen)


def _add(groups: dict, layout: tuple, tuples: list, observer: int) -> None:
    texts, observers = groups.setdefault(layout, ([], []))
    texts.extend(tuples)
    observers.extend([observer] * len(tuples))


def _parse(names, tuples: list[str], observers, file_id: int, out: FileRead) -> None:
    """Tuples of one layout, parsed as CSV columns, into directed records."""
    pa = arrow.pyarrow()
    pc = arrow.require_module("pyarrow.compute")
    try:
        array = pa.array(tuples, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # a tuple that is no string: shown as JSON
        tuples = [t if isinstance(t, str) else json.dumps(t) for t in tuples]
        array = pa.array(tuples, pa.string())
    fields = pc.split_pattern(array, ",")
    shape = np.asarray(pc.equal(pc.list_value_length(fields), len(names)).fill_null(False))
    if not shape.all():
        bad = np.flatnonzero(~shape)
        out.invalid_rows += [tuples[i] for i in bad[:5].tolist()]
        out.bad_count += len(bad) - min(len(bad), 5)
        fields, observers = fields.filter(pa.array(shape)), observers[shape]
    n = len(fields)
    if not n:
        return
    flat = pc.list_flatten(fields)
    col = {
        name: flat.take(np.arange(j, n * len(names), len(names))) for j, name in enumerate(names)
    }
    src_hi, src_lo, src_ok = arrow.address_columns(col["src"])
    dst_hi, dst_lo, dst_ok = arrow.address_columns(col["dst"])
    ts, ts_ok = arrow.numbers(col["ts"])
    proto, proto_ok = arrow.numbers(col["proto"])
    tcp_letter, udp_letter = (
        arrow.texts_equal(col["proto"], "T"),
        arrow.texts_equal(col["proto"], "U"),
    )
    proto = np.where(tcp_letter, TCP, np.where(udp_letter, UDP, proto))
    proto_ok |= tcp_letter | udp_letter
    sport, _ = arrow.numbers(col["sport"])
    dport, _ = arrow.numbers(col["dport"])
    counts = {k: arrow.numbers(col[k])[0] if k in col else np.zeros(n, np.int64) for k in NSG2[9:]}
    denied = np.zeros(n, bool)
    if "decision" in col:
        denied |= arrow.texts_equal(col["decision"], "D")
    if "state" in col:
        denied |= arrow.texts_equal(col["state"], "D")
    good = src_ok & dst_ok & ts_ok & proto_ok
    if not good.all():
        bad = np.flatnonzero(~good)
        texts = pc.binary_join_element_wise(*(col[k] for k in names), ",").take(bad[:5])
        out.damaged([f"tuple “{t[:60]}”" for t in texts.to_pylist()], BAD_TUPLE)
        out.bad_count += len(bad) - len(texts)
    when = ts * (1_000_000 if names is VNET else NS)  # VNet: ms; NSG: s
    ported = (proto == TCP) | (proto == UDP)
    base = {
        "proto": proto,
        "first": when,
        "last": when,
        "observer": observers,
        "file": np.full(n, file_id),
        "rejected": denied,
        "sport": np.where(ported, sport, 0),
        "dport": np.where(ported, dport, 0),
    }
    s2d = {
        **base,
        "src_hi": src_hi,
        "src_lo": src_lo,
        "dst_hi": dst_hi,
        "dst_lo": dst_lo,
        "pkts": counts["pkts_s2d"],
        "bytes": counts["bytes_s2d"],
        "opened": np.full(n, BY_RECORD + 1),
    }
    s2d["acc_pkts"] = np.where(denied, 0, s2d["pkts"])
    answered = good & (counts["pkts_d2s"] > 0)
    d2s = {
        **base,
        "src_hi": dst_hi,
        "src_lo": dst_lo,
        "dst_hi": src_hi,
        "dst_lo": src_lo,
        "sport": base["dport"],
        "dport": base["sport"],
        "pkts": counts["pkts_d2s"],
        "bytes": counts["bytes_d2s"],
    }
    d2s["acc_pkts"] = np.where(denied, 0, d2s["pkts"])
    out.add(directed({k: v[good] for k, v in s2d.items()}), int(good.sum()))
    d2s_rows = directed({k: v[answered] for k, v in d2s.items()})
    d2s_rows["records"] = constant(0, np.int64, len(d2s_rows["proto"]))  # counted once
    out.add(d2s_rows, 0)
    out.tcp |= bool((proto[good] == TCP).any())
