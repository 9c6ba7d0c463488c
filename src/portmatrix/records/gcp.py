"""GCP VPC Flow Logs as exported from Cloud Logging: JSON lines (a sink to
Cloud Storage) or a JSON array (`gcloud logging read --format=json`).

A record (`jsonPayload`) is one direction of a connection (`connection.src_ip`
→ `connection.dest_ip`, `bytes_sent` and `packets_sent` that way) over an
aggregation interval (`start_time`, `end_time`), reported by one side
(`reporter` SRC or DEST, with its VM: the observer — traffic between two
logged VMs is reported by both). Packets are sampled, and there are no TCP
flags and no initiator: the ports decide who initiated, every verdict is
marked heuristic, and a flow seen one way only is not called unanswered (its
answer may just not have been sampled). Only traffic that was allowed is
logged: nothing is `blocked` here.
"""

from __future__ import annotations

import json

import numpy as np

from portmatrix.decode.transport import SCTP, TCP, UDP
from portmatrix.errors import CaptureError
from portmatrix.records import arrow
from portmatrix.records.directed import directed
from portmatrix.records.source import FileRead, observer_id, open_text

REMARK = (
    "GCP flow logs are sampled and carry no TCP flags: every initiator is guessed from "
    "the ports, a flow seen one way is not called unanswered, and a service missing "
    "from them may just not have been sampled"
)
HINT = "give GCP VPC flow logs exported from Cloud Logging (JSON lines or a JSON array)"
BAD_ENTRY = "no connection 5-tuple or start_time in jsonPayload"


def sniff(head: bytes) -> bool:
    start = head.lstrip()[:1]
    return start in (b"{", b"[") and (
        b"vpc_flows" in head
        or (b'"jsonPayload"' in head and b'"connection"' in head and b'"reporter"' in head)
    )


def read(file_id: int, path: str, out: FileRead) -> None:
    out.format = "gcp-vpc-flow"
    entries = _entries(path, out)
    if entries is None or not len(entries):
        out.check_any(HINT)
        return
    payload = _field(entries, "jsonPayload")
    if payload is None:
        raise CaptureError("no jsonPayload in the entries", file=path, hint=HINT)
    get = lambda *names: _leaf(payload, *names)  # noqa: E731
    n = len(entries)
    src_hi, src_lo, src_ok = _addresses(get("connection", "src_ip"), n)
    dst_hi, dst_lo, dst_ok = _addresses(get("connection", "dest_ip"), n)
    proto, proto_ok = _numbers(get("connection", "protocol"), n)
    sport, _ = _numbers(get("connection", "src_port"), n)
    dport, _ = _numbers(get("connection", "dest_port"), n)
    pkts, _ = _numbers(get("packets_sent"), n)
    nbytes, _ = _numbers(get("bytes_sent"), n)
    start, start_ok = _times(get("start_time"), n)
    end, end_ok = _times(get("end_time"), n)
    good = src_ok & dst_ok & proto_ok & start_ok
    out.damaged([f"entry {i + 1}" for i in np.flatnonzero(~good)[:5].tolist()], BAD_ENTRY)
    out.bad_count += max(0, int((~good).sum()) - 5)
    ported = (proto == TCP) | (proto == UDP) | (proto == SCTP)
    cols = {
        "proto": proto,
        "src_hi": src_hi,
        "src_lo": src_lo,
        "dst_hi": dst_hi,
        "dst_lo": dst_lo,
        "sport": np.where(ported, sport, 0),
        "dport": np.where(ported, dport, 0),
        "first": start,
        "last": np.where(end_ok, end, start),
        "pkts": pkts,
        "bytes": nbytes,
        "sampled": np.ones(n, bool),
        "observer": _observers(
            get("reporter"), get("src_instance", "vm_name"), get("dest_instance", "vm_name"), n
        ),
        "file": np.full(n, file_id),
    }
    out.add(directed({k: v[good] for k, v in cols.items()}), int(good.sum()))
    out.sampled += int(good.sum())


def _entries(path: str, out: FileRead):
    """The log entries as one Arrow struct array (None when there are none)."""
    pa = arrow.pyarrow()
    with open_text(path) as fh:
        data = fh.read()
    text = data.lstrip()
    if text.startswith(b"["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CaptureError(
                f"not JSON ({exc.msg})", file=path, where=f"line {exc.lineno}", hint=HINT
            ) from None
        return _struct_array([i if isinstance(i, dict) else {} for i in items])
    pj = arrow.require_module("pyarrow.json")
    try:
        table = pj.read_json(pa.py_buffer(data))
        return pa.StructArray.from_arrays(
            [c.combine_chunks() for c in table.columns], names=table.column_names
        )
    except pa.ArrowInvalid:
        pass  # a damaged line, or types that differ between lines: line by line
    items = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            out.damaged([number], "not JSON")
            continue
        items.append(item if isinstance(item, dict) else {})
    return _struct_array(items) if items else None


def _struct_array(items: list[dict]):
    """The entries as one Arrow struct array; entries whose values differ in kind
    (an object in one, a number or a list in another: what one Arrow column
    cannot hold) made alike first (`_alike`)."""
    pa = arrow.pyarrow()
    try:
        return pa.array(items)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array(_alike(items))


def _alike(items: list[dict]) -> list[dict]:
    """A key that holds an object in any entry holds an object (or nothing) in
    every entry; every other value becomes text (JSON for what is not a string),
    which the readers of numbers and addresses then judge as they judge any text."""
    objects: set[tuple] = set()

    def scan(item: dict, at: tuple) -> None:
        for key, value in item.items():
            if isinstance(value, dict):
                objects.add((*at, key))
                scan(value, (*at, key))

    def alike(item: dict, at: tuple) -> dict:
        out = {}
        for key, value in item.items():
            here = (*at, key)
            if here in objects:
                out[key] = alike(value, here) if isinstance(value, dict) else None
            elif value is None or isinstance(value, str):
                out[key] = value
            else:
                out[key] = json.dumps(value)
        return out

    for item in items:
        scan(item, ())
    return [alike(item, ()) for item in items]


def _field(array, *names):
    """A nested struct field, or None when the entries do not have it."""
    pa = arrow.pyarrow()
    for name in names:
        if array is None or not pa.types.is_struct(array.type):
            return None
        if array.type.get_field_index(name) < 0:
            return None
        array = array.field(name)
    return array


def _leaf(array, *names):
    """A nested field that holds values (text, numbers), or None: where the entries
    hold objects or lists in its place, it holds nothing the reader can use."""
    pa = arrow.pyarrow()
    array = _field(array, *names)
    if array is None or pa.types.is_nested(array.type):
        return None
    return array


def _addresses(array, n: int):
    if array is None:
        return np.zeros(n, np.uint64), np.zeros(n, np.uint64), np.zeros(n, bool)
    return arrow.address_columns(array.cast(arrow.pyarrow().string()))


def _numbers(array, n: int):
    if array is None:
        return np.zeros(n, np.int64), np.zeros(n, bool)
    return arrow.numbers(array)


def _times(array, n: int):
    if array is None:
        return np.zeros(n, np.int64), np.zeros(n, bool)
    return arrow.times(array)


def _observers(reporter, src_vm, dest_vm, n: int) -> np.ndarray:
    """Who reported each record: the reporting side and its VM, hashed."""
    pa = arrow.pyarrow()
    pc = arrow.require_module("pyarrow.compute")
    if reporter is None:
        return np.zeros(n, np.uint64)
    empty = pa.nulls(n, pa.string())
    src_vm = src_vm.cast(pa.string()) if src_vm is not None else empty
    dest_vm = dest_vm.cast(pa.string()) if dest_vm is not None else empty
    reporter = reporter.cast(pa.string())
    vm = pc.if_else(pc.equal(reporter, "SRC"), src_vm, dest_vm)
    who = pc.binary_join_element_wise(reporter.fill_null(""), vm.fill_null(""), ":")
    encoded = pc.dictionary_encode(who)
    ids = np.array([observer_id(str(v)) for v in encoded.dictionary.to_pylist()] + [0], np.uint64)
    at = encoded.indices.fill_null(len(ids) - 1).to_numpy(zero_copy_only=False)
    return ids[at.astype(np.int64)]
