"""AWS VPC Flow Logs: text as delivered to S3 (a header line naming the fields,
space-separated, `-` for absent values, usually gzip) in any custom field order
of versions 2 to 5, the default format without its header, and the Parquet
delivery. Read columnar (pyarrow's CSV reader), never a Python loop per line.

What a record says (docs/flow-records.md has the whole mapping): one direction
(`srcaddr` → `dstaddr`; `pkt-srcaddr`/`pkt-dstaddr` when the format has them,
the packet's own addresses) at one ENI (`interface-id`, the observer) in one
aggregation window; `tcp-flags` OR-ed over the window (SYN 2, SYN-ACK 18, FIN 1,
RST 4; ACK is only reported with SYN, so 18 is a certain SYN-ACK and 2 a
certain pure SYN); `action` REJECT: a security group or network ACL dropped
the packets; `log-status` NODATA (no traffic at the ENI in the window) and
SKIPDATA (records skipped: traffic missing from the log) are counted, not
flows. Fields a version adds that portmatrix does not use are ignored by name.
"""

from __future__ import annotations

import ipaddress
import re

import numpy as np

from portmatrix.decode.transport import TCP
from portmatrix.errors import CaptureError
from portmatrix.flows.model import BY_SYN
from portmatrix.records import arrow, awstext
from portmatrix.records.directed import NS, constant, directed
from portmatrix.records.source import SHOWN, FileRead, open_text, read_all
from portmatrix.sources.workers import usable_cpus

DEFAULT = (
    *("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport"),
    *("protocol", "packets", "bytes", "start", "end", "action", "log-status"),
)
"""The default (version 2) format, in its order: what a file without a header holds."""

FIELDS = frozenset(
    (
        *DEFAULT,
        *("vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr"),
        *("pkt-dstaddr", "region", "az-id", "sublocation-type", "sublocation-id"),
        *("pkt-src-aws-service", "pkt-dst-aws-service", "flow-direction", "traffic-path"),
        *("ecs-cluster-arn", "ecs-cluster-name", "ecs-container-instance-arn"),
        *("ecs-container-instance-id", "ecs-container-id", "ecs-second-container-id"),
        *("ecs-service-name", "ecs-task-definition-arn", "ecs-task-arn", "ecs-task-id"),
        *("reject-reason", "resource-id", "encryption-status"),
    )
)
"""Field names of versions 2 to 5 and later ones, as a header names them."""

USED = (
    *("interface-id", "srcaddr", "dstaddr", "pkt-srcaddr", "pkt-dstaddr", "srcport"),
    *("dstport", "protocol", "packets", "bytes", "start", "end", "action", "log-status"),
    "tcp-flags",
)
NUMBERS = ("srcport", "dstport", "protocol", "packets", "bytes", "start", "end", "tcp-flags")
TEXTS = ("interface-id", "srcaddr", "dstaddr", "pkt-srcaddr", "pkt-dstaddr", "action")
TEXTS += ("log-status",)
HINT = "give AWS VPC flow logs as delivered to S3 (text with its header line, or Parquet)"

_DEFAULT_LINE = re.compile(
    rb"^\d+ \S+ \S+ \S+ \S+ \S+ \S+ \S+ \S+ \S+ \d+ \d+ \S+ (OK|NODATA|SKIPDATA)\s*$"
)


def header(line: bytes) -> list[str] | None:
    """The field names of a header line, or None when the line is no header."""
    names = line.decode("ascii", "replace").split()
    known = [n for n in names if n in FIELDS]
    if len(names) >= 3 and len(known) * 2 > len(names) and {"srcaddr", "dstaddr"} & set(names):
        return names
    return None


def sniff(head: bytes) -> bool:
    """A header line naming AWS fields, a record of the default format, or Parquet."""
    if head.startswith(b"PAR1"):
        return True
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    return header(first) is not None or bool(_DEFAULT_LINE.match(first))


def read(file_id: int, path: str, out: FileRead, compiled: bool = True) -> None:
    """Records of one file (text or Parquet) into `out`; text through the compiled
    parser where it was built (`compiled=False`: pyarrow's CSV reader, the
    reference)."""
    with open(path, "rb") as fh:
        parquet = fh.read(4) == b"PAR1"
    out.format = "aws-vpc-parquet" if parquet else "aws-vpc"
    if parquet:
        rows_before = 0
        for batch in _parquet(path, out):
            cols = _arrow_columns(batch)
            cols["line"] = np.arange(batch.num_rows) + rows_before + 1  # rows, for Parquet
            _records(cols, file_id, out)
            rows_before += batch.num_rows
    else:
        _text(path, out, file_id, compiled and awstext.compiled is not None)
    out.check_any(HINT)


def _text(path: str, out: FileRead, file_id: int, compiled: bool) -> None:
    data, cut = read_all(path)
    if cut:
        out.cut_short(cut)
    first = data[: data.find(b"\n")].rstrip(b"\r") if b"\n" in data[:65536] else data[:65536]
    names = header(first)
    if names is None and not _DEFAULT_LINE.match(first):
        raise CaptureError(
            "no header line naming AWS flow log fields (srcaddr, dstaddr, ...)",
            file=path,
            where="line 1",
            hint=HINT,
        )
    out.header = names is not None
    names = names or list(DEFAULT)
    _check_fields(names, path)
    if compiled:
        start, line = (data.find(b"\n") + 1 or len(data), 1) if out.header else (0, 0)
        for cols in awstext.chunks(data, names, start, line):
            _records(cols, file_id, out, lambda lines, offsets: _faults(data, names, offsets))
        return
    lines_before = 1 if out.header else 0
    for batch in _csv(data, names, path, out):
        cols = _arrow_columns(batch)
        cols["line"] = np.arange(batch.num_rows) + lines_before + 1
        _records(cols, file_id, out)
        lines_before += batch.num_rows
    if out.bad_count or out.invalid_rows:
        _locate(path, out)


def _csv(data: bytes, names: list[str], path: str, out: FileRead):
    """Batches of the used fields, read by pyarrow's CSV reader (the reference)."""
    pa = arrow.pyarrow()
    csv = arrow.require_module("pyarrow.csv")
    wanted = [n for n in USED if n in names]
    invalid: list[str] = []

    def skip(row) -> str:
        invalid.append(row.text)
        return "skip"

    read_options = csv.ReadOptions(
        column_names=None if out.header else names,
        block_size=4 << 20,
        use_threads=usable_cpus() > 1,  # pinned to one core, threads only take turns
    )
    parse = csv.ParseOptions(delimiter=" ", quote_char=False, invalid_row_handler=skip)
    table = None
    for typed in (True, False):  # a malformed number: read again as text, checked row by row
        types = {n: (pa.int64() if typed and n in NUMBERS else pa.string()) for n in wanted}
        convert = csv.ConvertOptions(
            column_types=types, include_columns=wanted, null_values=["-"], strings_can_be_null=True
        )
        invalid.clear()
        try:
            table = csv.read_csv(pa.py_buffer(data), read_options, parse, convert)
            break
        except pa.ArrowInvalid as exc:
            if typed and "conversion error" in str(exc):
                continue
            if "Empty CSV file" in str(exc):
                return
            raise CaptureError(
                f"cannot read it as text fields ({exc})", file=path, hint=HINT
            ) from None
    out.invalid_rows += invalid
    yield from table.combine_chunks().to_batches()  # one batch: per-call costs once per file


def _check_fields(names: list[str], path: str) -> None:
    missing = [n for n in ("srcaddr", "dstaddr", "protocol", "start") if n not in names]
    if missing:
        raise CaptureError(
            f"the header has no {', '.join(missing)} field",
            file=path,
            where="line 1",
            hint="a flow log needs srcaddr, dstaddr, protocol and start: " + HINT,
        )


def _parquet(path: str, out: FileRead):
    arrow.pyarrow()
    pq = arrow.require_module("pyarrow.parquet")
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several kinds for a damaged file
        raise CaptureError(f"not a readable Parquet file ({exc})", file=path, hint=HINT) from None
    names = {c.replace("_", "-"): c for c in pf.schema_arrow.names}
    _check_fields(list(names), path)
    wanted = [n for n in USED if n in names]
    try:
        for batch in pf.iter_batches(batch_size=1 << 20, columns=[names[n] for n in wanted]):
            yield batch.rename_columns(wanted)
    except Exception as exc:
        out.cut_short(f"cannot read past here ({exc})")


def _arrow_columns(batch) -> dict:
    """The reader's columns (see `_records`) of a pyarrow batch of the used fields."""
    names = batch.schema.names
    n = batch.num_rows
    col = {name: batch.column(name) for name in names}
    cols: dict = {"n": n}
    if "log-status" in col:
        status = arrow.words(col["log-status"])
        cols["status"] = tuple(arrow.among(status, w) for w in ("OK", "NODATA", "SKIPDATA"))
    for name in ("srcaddr", "dstaddr", "pkt-srcaddr", "pkt-dstaddr"):
        if name in col:
            cols[name] = arrow.address_columns(col[name])
    nums = {}
    garbled = np.zeros(n, bool)
    for name in NUMBERS:
        if name in col:
            nums[name] = arrow.numbers(col[name])
            garbled |= arrow.malformed(col[name])
    cols["nums"], cols["garbled"] = nums, garbled
    if "action" in col:
        cols["rejected"] = arrow.texts_equal(col["action"], "REJECT")
    cols["observer"] = _observers(col.get("interface-id"), n)
    return cols


def _records(cols: dict, file_id: int, out: FileRead, faults=None) -> None:
    """Rows of one batch (columns of either reader) into directed records; bad rows
    counted and named by line.

    `cols`: "n" rows; "line" (their line numbers); "nums" {NUMBERS name: (values,
    present)} for the fields the file has; "garbled" (a number is malformed);
    "srcaddr", "dstaddr" and, where the file has them, "pkt-srcaddr",
    "pkt-dstaddr": (hi, lo, ok); "status" (OK, NODATA, SKIPDATA) bools, when the
    file has log-status; "rejected", when it has action; "observer". The
    compiled reader adds "shape_ok" (the line has the header's field count) and
    "offset" (where each line starts), and `faults` says why lines are damaged."""
    n = cols["n"]
    shape_ok = cols.get("shape_ok")
    if "status" in cols:
        status_ok, nodata, skipdata = cols["status"]
        if shape_ok is not None:  # a misshapen line says nothing, not even its status
            status_ok, nodata, skipdata = (c & shape_ok for c in (status_ok, nodata, skipdata))
        out.nodata += int(nodata.sum())
        out.skipdata += int(skipdata.sum())
    else:
        status_ok = np.ones(n, bool) if shape_ok is None else shape_ok.copy()
    src_hi, src_lo, src_ok = cols["srcaddr"]  # both readers' own arrays: changed in place
    dst_hi, dst_lo, dst_ok = cols["dstaddr"]
    for name, hi, lo, ok in (
        ("pkt-srcaddr", src_hi, src_lo, src_ok),
        ("pkt-dstaddr", dst_hi, dst_lo, dst_ok),
    ):
        if name in cols:  # the packet's own address, where the record gives it
            phi, plo, pok = cols[name]
            hi[pok], lo[pok], ok[pok] = phi[pok], plo[pok], True
    nums, present = {}, {}
    none = (np.zeros(n, np.int64), np.zeros(n, bool))
    for name in NUMBERS:
        nums[name], present[name] = cols["nums"].get(name, none)
    if "status" not in cols:  # no status field: a row without addresses had no data
        empty = status_ok & ~src_ok & ~dst_ok & ~present["packets"]
        out.nodata += int(empty.sum())
        status_ok &= ~empty
    proto = nums["protocol"]
    good = status_ok & src_ok & dst_ok & present["protocol"] & present["start"] & ~cols["garbled"]
    good &= (proto >= 0) & (proto <= 255)
    bad = status_ok & ~good if shape_ok is None else ~shape_ok | (status_ok & ~good)
    if faults is None:
        out.damaged(cols["line"][bad], BAD_ROW)
    elif bad.any():
        _name_faults(out, cols["line"][bad], cols["offset"][bad], faults)
    tcp = proto == TCP
    flags = nums["tcp-flags"]
    known = present["tcp-flags"] & tcp
    rejected = cols.get("rejected")
    if rejected is None:
        rejected = np.zeros(n, bool)
    end = np.where(present["end"], nums["end"], nums["start"])
    ported = tcp | (proto == 17) | (proto == 132)
    rows = {
        "proto": proto,
        "src_hi": src_hi,
        "src_lo": src_lo,
        "dst_hi": dst_hi,
        "dst_lo": dst_lo,
        "sport": np.where(ported, nums["srcport"], 0),
        "dport": np.where(ported, nums["dstport"], 0),
        "first": nums["start"] * NS,
        "last": end * NS,
        "pkts": nums["packets"],
        "bytes": nums["bytes"],
        "acc_pkts": np.where(rejected, 0, nums["packets"]),
        "flags": np.where(known, flags, 0),
        "flags_known": known,
        # ACK is only reported with SYN: 18 is a SYN-ACK, 2 without 16 a pure SYN.
        "synack": known & ((flags & 18) == 18),
        "opened": np.where(known & ((flags & 18) == 2), BY_SYN + 1, 0),
        "rejected": rejected,
        "observer": cols["observer"],
        "file": constant(file_id, np.int32, n),
    }
    keep = None if good.all() else np.flatnonzero(good)
    out.add(directed(rows), int(good.sum()), keep)
    out.flags_known |= bool(known.any())
    out.tcp |= bool(tcp[good].any())


def _name_faults(out: FileRead, lines, offsets, faults) -> None:
    """Damaged lines by number, the first few with why (the rest are counted)."""
    shown = max(SHOWN - len(out.bad), 0)
    whys = faults(lines[:shown], offsets[:shown])
    for line, why in zip(lines[:shown].tolist(), whys, strict=True):
        out.damaged([line], why or BAD_ROW)
    out.damaged(lines[shown:], BAD_ROW)


def _faults(data: bytes, names: list[str], offsets) -> list[str]:
    """Why each line (at these offsets) is no record."""
    whys = []
    for at in np.asarray(offsets).tolist():
        end = data.find(b"\n", at)
        line = data[at : end if end >= 0 else len(data)].decode("utf-8", "replace").rstrip("\r")
        whys.append(_line_fault(line.split(" "), names))
    return whys


BAD_ROW = "an address, the protocol or the start time is missing, or a number is malformed"


def _locate(path: str, out: FileRead) -> None:
    """The damaged lines by their real numbers (the columnar read skips blank and
    misshapen lines, so its row numbers are not line numbers): read again line by
    line, which only a damaged file pays for."""
    out.bad, out.bad_count, out.invalid_rows = [], 0, []
    names: list[str] | None = None
    with open_text(path) as fh:
        for number, raw in enumerate(fh, 1):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if names is None:
                names = line.split() if out.header else list(DEFAULT)
                if out.header:
                    continue
            if not line:  # a blank line is no row; one of spaces is a misshapen one
                continue
            why = _line_fault(line.split(" "), names)
            if why:
                out.damaged([number], why)


_NUMBER = re.compile(r"-?[0-9]{1,18}")


def _line_fault(values: list[str], names: list[str]) -> str:
    """Why one text line is no record ("" when it is one, or says it has no data):
    the rules `_records` applies to columns, for one line."""
    if len(values) != len(names):
        return f"{len(values)} fields where the header names {len(names)}"
    rec = dict(zip(names, values, strict=True))
    if "log-status" in rec and rec["log-status"].strip().upper() != "OK":
        return ""
    addr = {n: _address(rec.get(n, "-")) for n in ("srcaddr", "dstaddr", "pkt-srcaddr")}
    addr["pkt-dstaddr"] = _address(rec.get("pkt-dstaddr", "-"))
    src, dst = addr["pkt-srcaddr"] or addr["srcaddr"], addr["pkt-dstaddr"] or addr["dstaddr"]
    packets = _NUMBER.fullmatch(rec.get("packets", "-").strip())
    if "log-status" not in rec and not src and not dst and not packets:
        return ""  # no status field: a line without addresses had no data
    for name in NUMBERS:
        value = rec.get(name, "-")
        if value != "-" and not _NUMBER.fullmatch(value.strip()):
            return f"{name} {value[:40]!r} is not a number"
    for name, found in (("srcaddr", src), ("dstaddr", dst)):
        if not found:
            return f"{name} {rec[name][:40]!r} is not an address"
    for name in ("protocol", "start"):
        if rec[name] == "-":
            return f"no {name}"
    if not 0 <= int(rec["protocol"]) <= 255:
        return f"protocol {rec['protocol']} is not 0 to 255"
    return ""


def _address(text: str) -> bool:
    if text == "-":
        return False
    try:
        ipaddress.ip_address(text.strip())
    except ValueError:
        return False
    return True


def _observers(array, n: int) -> np.ndarray:
    """A 64-bit id per row for the ENI that logged it (0 when the format has no
    interface-id), the same in every file: the compiled reader's hash."""
    if array is None:
        return np.zeros(n, np.uint64)
    pa = arrow.pyarrow()
    pc = arrow.require_module("pyarrow.compute")
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not pa.types.is_dictionary(array.type):
        array = pc.dictionary_encode(array)
    ids = np.array(
        [awstext.eni_hash(str(v)) for v in array.dictionary.to_pylist()] + [0], dtype=np.uint64
    )
    at = array.indices.fill_null(len(ids) - 1).to_numpy(zero_copy_only=False)
    return ids[at.astype(np.int64)]
