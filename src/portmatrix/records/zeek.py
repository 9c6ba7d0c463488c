"""Zeek conn.log as a source of ready-made flows (TSV or JSON lines, gzip, rotated files).

A team that already runs Zeek gets portmatrix's verdicts without touching
pcaps. Zeek's originator is the initiator; conn_state gives the outcome and
history how sure the direction is:

  conn_state  outcome      (what Zeek saw)
  S0          unanswered   a connection attempt, no reply
  REJ         refused      attempt rejected (RST to the SYN)
  RSTOS0, SH  unanswered   the originator sent SYN (then RST or FIN), never answered
  SF S1 S2 S3 RSTO RSTR    established
  RSTRH, SHR  midstream    only the responder's SYN-ACK, no SYN from the originator
  OTH         midstream    no SYN seen: mid-stream traffic
  UDP, ICMP: established when the responder sent packets, else unanswered.

history: a leading S (the originator's SYN) is a certain direction (`syn`); an
h without S is `syn-ack`; a ^ (Zeek flipped the direction by its own guess) or
no handshake letter at all is the port heuristic (`port`).

A log may be hostile: every value is range-checked where it is converted. A
record without usable addresses or ports is skipped; a time out of range (NaN,
infinite, before 1970, after 2262) takes the time of the record before; a count
out of range (negative, NaN, beyond int64) is taken as 0. Each is counted, in
one notice per file and kind, never one per line.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import ipaddress
import json
import zlib
from pathlib import Path

import numpy as np

from portmatrix.addresses import split_int, to_int
from portmatrix.decode.batch import DecodeCounts
from portmatrix.decode.transport import ICMP_QUERY_REPLY, ICMPV6, TCP
from portmatrix.errors import CaptureError
from portmatrix.flows.model import (
    BY_FIRST,
    BY_PORT,
    BY_REQUEST,
    BY_SYN,
    BY_SYNACK,
    ESTABLISHED,
    MIDSTREAM,
    NOT_TCP,
    REFUSED,
    UNANSWERED,
    Flows,
)
from portmatrix.flows.traffic import Traffic
from portmatrix.sources.base import CaptureInfo
from portmatrix.textforms import PROTO_NUMBERS

STATES = {
    "S0": UNANSWERED,
    "REJ": REFUSED,
    "RSTOS0": UNANSWERED,
    "SH": UNANSWERED,
    "SF": ESTABLISHED,
    "S1": ESTABLISHED,
    "S2": ESTABLISHED,
    "S3": ESTABLISHED,
    "RSTO": ESTABLISHED,
    "RSTR": ESTABLISHED,
    "RSTRH": MIDSTREAM,
    "SHR": MIDSTREAM,
    "OTH": MIDSTREAM,
}


def _open(path: str):
    with open(path, "rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
    if compressed:
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


class NotConnLog(Exception):
    """A Zeek log of another kind (dns, http, ...): skipped, not read as connections."""


MAX_LINE = 1 << 20  # characters of a line: a conn.log record is a few hundred
MAX_SECONDS = (1 << 63) // 1_000_000_000 - 1  # the last second int64 ns hold (2262)
MAX_COUNT = (1 << 63) - 1
TOO_LONG = object()  # stands for a line longer than MAX_LINE


def _lines(fh):
    """(line number, line without its newline, or TOO_LONG), in bounded memory."""
    number = 0
    while True:
        line = fh.readline(MAX_LINE + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE and not line.endswith("\n"):
            while line and not line.endswith("\n"):  # skip the rest of it
                line = fh.readline(MAX_LINE)
            yield number, TOO_LONG
            continue
        yield number, line.rstrip("\n")


def _separator(value: str, path: str, number: int) -> str:
    """The separator a `#separator` line gives (written as \\x09)."""
    try:
        sep = value.encode().decode("unicode_escape")
    except UnicodeDecodeError:
        sep = ""
    if not sep:
        raise CaptureError(
            f"#separator {value!r} is not a separator",
            file=path,
            where=f"line {number}",
            hint="Zeek writes '#separator \\x09' (a tab)",
        )
    return sep


def _records(path: str):
    """(line number, record dict, or None for a line that cannot be one) of a TSV or
    JSON conn.log."""
    fields: list[str] | None = None
    sep, unset = "\t", "-"
    with _open(path) as fh:
        for number, line in _lines(fh):
            if line is TOO_LONG:
                yield number, None
                continue
            if not line:
                continue
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CaptureError(
                        f"not JSON ({exc.msg})", file=path, where=f"line {number}"
                    ) from None
                except RecursionError:  # nested deeper than any record is
                    record = None
                first = number == 1 and isinstance(record, dict)
                if first and "conn_state" not in record and "id.orig_h" in record:
                    raise NotConnLog(path)
                yield number, record
                continue
            if line.startswith("#"):
                key, _, value = line.partition(" " if line.startswith("#separator") else sep)
                if key == "#separator":
                    sep = _separator(value, path, number)
                elif key == "#fields":
                    fields = value.split(sep)
                elif key == "#unset_field":
                    unset = value
                elif key == "#path" and value != "conn":
                    raise NotConnLog(path)
                continue
            if fields is None:
                raise CaptureError(
                    "a record before the #fields header",
                    file=path,
                    where=f"line {number}",
                    hint="give a Zeek conn.log (TSV with its header, or JSON)",
                )
            values = line.split(sep)
            yield (
                number,
                {k: (None if v == unset else v) for k, v in zip(fields, values, strict=False)},
            )


def _time(value) -> float | None:
    """Seconds since the epoch from Zeek's ts: a number, or ISO 8601 (JSON::TS_ISO8601);
    None when out of range (NaN, infinite, before 1970, after 2262). Raises
    ValueError when it is no time at all."""
    try:
        seconds = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    except (TypeError, ValueError):
        when = dt.datetime.fromisoformat(str(value))
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = when.timestamp()
    return seconds if 0 <= seconds <= MAX_SECONDS else None  # NaN compares false


def _number(value, default=0.0, top: float = MAX_COUNT) -> float | None:
    """A count or duration: `default` when unset or not a number; None when out of
    range (negative, NaN, infinite, above `top`)."""
    if value in (None, "", "-"):
        return default
    try:
        number = float(value)
    except OverflowError:
        return None
    except (TypeError, ValueError):
        return default
    return number if 0 <= number <= top else None


def _port(value) -> int:
    """A port (or Zeek's ICMP type and code): 0 when unset; ValueError out of range."""
    number = _number(value, top=65535)
    if number is None:
        raise ValueError(f"port {value!r} out of range")
    return int(number)


COLUMNS = (
    *("proto", "init", "resp", "init_port", "resp_port", "icmp_req", "first_ts", "last_ts"),
    *("pkts_fwd", "pkts_rev", "bytes_fwd", "bytes_rev", "outcome", "initiator_by", "close"),
    *("file0", "frame0"),
)


def read_conn_logs(paths: list[str]) -> Traffic:
    """Flows from Zeek conn.log files, as a Traffic the check reads like a capture's."""
    rows: dict[str, list] = {k: [] for k in COLUMNS}
    read = [_read_file(file_id, path, rows) for file_id, path in enumerate(paths)]
    counts = DecodeCounts(ts_out_of_range=sum(late for _, late in read))
    return Traffic(flows=_flows(rows), counts=counts, captures=[info for info, _ in read])


def _read_file(file_id: int, path: str, rows: dict[str, list]) -> tuple[CaptureInfo, int]:
    """One conn.log's records appended to `rows`; what the file said about itself, and
    how many records had a time out of range."""
    info = CaptureInfo(path=path, format="zeek-conn")
    try:
        info.size = Path(path).stat().st_size
    except OSError:
        raise CaptureError("no such file", file=path, hint="check the path") from None
    records = _records(path)
    skipped: list[int] = []  # the first line numbers of records that are not connections
    problems = {"skipped": 0, "time": 0, "count": 0}
    times = _Times()
    while True:
        try:
            number, rec = next(records)
        except StopIteration:
            break
        except NotConnLog:
            info.notices.append("not a conn log (its #path says otherwise): skipped")
            break
        except (EOFError, zlib.error) as exc:  # a .gz cut short, e.g. still rotating
            info.truncated = f"compressed data ends early ({exc}); analyzed up to there"
            break
        except UnicodeDecodeError:
            raise CaptureError(
                "not text (UTF-8)", file=path, hint="give Zeek conn.log files (TSV or JSON)"
            ) from None
        except OSError as exc:
            raise CaptureError(f"cannot read: {exc}", file=path) from None
        info.frames += 1
        try:
            row, bad = _row(rec)
        except (KeyError, TypeError, ValueError, AttributeError):
            problems["skipped"] += 1
            skipped += [number] if len(skipped) < 5 else []
            if problems["skipped"] == info.frames and info.frames >= 5:
                raise CaptureError(
                    "no connection records (no id.orig_h, id.resp_h and ts) in the first lines",
                    file=path,
                    where=f"line {number}",
                    hint="give Zeek conn.log files",
                ) from None
            continue
        for kind in bad:
            problems[kind] += 1
        row["file0"] = file_id
        times.add(row, len(rows["first_ts"]))
        for k, v in row.items():
            rows[k].append(v)
    times.finish(rows, info.path)
    info.notices += _notices(skipped, problems)
    with open(path, "rb") as fh:
        info.sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
    return info, problems["time"]


def _notices(skipped: list[int], problems: dict[str, int]) -> list[str]:
    """One sentence per kind of problem, however many lines have it."""
    out = []
    if problems["skipped"]:
        first = ", ".join(map(str, skipped)) + (", ..." if problems["skipped"] > 5 else "")
        out.append(
            f"{problems['skipped']} line(s) are not connection records (skipped): line {first}"
        )
    if problems["time"]:
        out.append(
            f"{problems['time']} record(s) have a time out of range (NaN, infinite, before "
            "1970 or after 2262): given the time of the record before"
        )
    if problems["count"]:
        out.append(
            f"{problems['count']} record(s) have a packet or byte count out of range "
            "(negative, NaN or beyond 2^63): taken as 0"
        )
    return out


class _Times:
    """Records whose time is out of range get the time of the record before in the
    file; those before any good one, the first good one's; in a file without any,
    the file's modification time."""

    def __init__(self) -> None:
        self.last: tuple[int, int] | None = None  # (first_ts, last_ts) of the last good
        self.waiting: list[int] = []  # rows before any good one

    def add(self, row: dict, index: int) -> None:
        if row["first_ts"] is None:
            if self.last is None:
                self.waiting.append(index)
            else:
                row["first_ts"] = row["last_ts"] = self.last[0]
            return
        self.last = (row["first_ts"], row["last_ts"])

    def finish(self, rows: dict[str, list], path: str) -> None:
        if not self.waiting:
            return
        if self.last is not None:  # the first good record follows the waiting ones
            when = rows["first_ts"][self.waiting[-1] + 1]
        else:
            try:
                when = Path(path).stat().st_mtime_ns
            except OSError:
                when = 0
        for index in self.waiting:
            rows["first_ts"][index] = rows["last_ts"][index] = when


def _row(rec: dict) -> tuple[dict, list[str]]:
    """The flow columns of one conn.log record, and the kinds of values out of range
    ("time", "count") it had; raises on a record without its addresses, ports or
    time."""
    orig = to_int(ipaddress.ip_address(rec["id.orig_h"]))
    resp = to_int(ipaddress.ip_address(rec["id.resp_h"]))
    ts = _time(rec["ts"])
    duration = _number(rec.get("duration"), top=MAX_SECONDS)
    name = str(rec.get("proto") or "").lower()
    v6 = ":" in str(rec["id.orig_h"])
    proto = ICMPV6 if name == "icmp" and v6 else PROTO_NUMBERS.get(name, 0)
    state, history = str(rec.get("conn_state") or ""), str(rec.get("history") or "")
    oport, rport = _port(rec.get("id.orig_p")), _port(rec.get("id.resp_p"))
    counts = {
        k: _number(rec.get(k)) for k in ("orig_pkts", "resp_pkts", "orig_ip_bytes", "resp_ip_bytes")
    }
    bad = [] if ts is not None and duration is not None else ["time"]
    bad += ["count"] if None in counts.values() else []
    counts = {k: int(v or 0) for k, v in counts.items()}
    resp_pkts = counts["resp_pkts"]
    icmp = proto in ICMP_QUERY_REPLY
    if proto == TCP:
        outcome = STATES.get(state, MIDSTREAM)
        by = (
            BY_SYN
            if history.startswith("S") and "^" not in history
            else BY_SYNACK
            if "h" in history and "S" not in history and "^" not in history
            else BY_PORT
        )
        close = (
            2
            if ("R" in history or "r" in history)
            else (1 if ("F" in history or "f" in history) else 0)
        )
    else:
        outcome = ESTABLISHED if resp_pkts else UNANSWERED
        # Zeek's originator port of an ICMP connection is its type.
        by = BY_REQUEST if icmp and oport in ICMP_QUERY_REPLY[proto] else BY_FIRST
        close = NOT_TCP
    first = None if ts is None else int(ts * 1_000_000) * 1000
    last = first if first is None or duration is None else int((ts + duration) * 1_000_000) * 1000
    row = {
        "proto": proto,
        "init": orig,
        "resp": resp,
        "init_port": 0 if icmp else oport,  # Zeek: ICMP type and code
        "resp_port": 0 if icmp else rport,
        "icmp_req": oport if icmp else -1,
        "first_ts": first,
        "last_ts": None if first is None else min(last, MAX_SECONDS * 1_000_000_000),
        "pkts_fwd": counts["orig_pkts"],
        "pkts_rev": resp_pkts,
        "bytes_fwd": counts["orig_ip_bytes"],
        "bytes_rev": counts["resp_ip_bytes"],
        "outcome": outcome,
        "initiator_by": by,
        "close": close,
        "frame0": -1,
    }
    return row, bad


def _flows(rows: dict[str, list]) -> Flows:
    """The flow columns conn.log gives; what it does not say (TCP flags, VLANs,
    ICMP errors, frames) stays at each column's `missing` value, so no flow
    counts as seen one way only."""
    cols = {k: np.array(v, np.int64) for k, v in rows.items() if k not in ("init", "resp")}
    cols["init_hi"], cols["init_lo"] = split_int(rows["init"])
    cols["resp_hi"], cols["resp_lo"] = split_int(rows["resp"])
    flows = Flows.from_columns(cols)
    return flows.take(np.lexsort((flows["frame0"], flows["file0"], flows["first_ts"])))
