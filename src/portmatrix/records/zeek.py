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


def _records(path: str):
    """(line number, record dict) of a TSV or JSON conn.log."""
    fields: list[str] | None = None
    sep, unset = "\t", "-"
    with _open(path) as fh:
        for number, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                    if number == 1 and "conn_state" not in record and "id.orig_h" in record:
                        raise NotConnLog(path)
                    yield number, record
                except json.JSONDecodeError as exc:
                    raise CaptureError(
                        f"not JSON ({exc.msg})", file=path, where=f"line {number}"
                    ) from None
                continue
            if line.startswith("#"):
                key, _, value = line.partition(" " if line.startswith("#separator") else sep)
                if key == "#separator":
                    sep = value.encode().decode("unicode_escape")
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


def _time(value) -> float:
    """Seconds since the epoch from Zeek's ts: a number, or ISO 8601 (JSON::TS_ISO8601)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        when = dt.datetime.fromisoformat(str(value))
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return when.timestamp()


def _number(value, default=0.0) -> float:
    try:
        return float(value) if value not in (None, "", "-") else default
    except (TypeError, ValueError):
        return default


COLUMNS = (
    *("proto", "init", "resp", "init_port", "resp_port", "icmp_req", "first_ts", "last_ts"),
    *("pkts_fwd", "pkts_rev", "bytes_fwd", "bytes_rev", "outcome", "initiator_by", "close"),
    *("file0", "frame0"),
)


def read_conn_logs(paths: list[str]) -> Traffic:
    """Flows from Zeek conn.log files, as a Traffic the check reads like a capture's."""
    rows: dict[str, list] = {k: [] for k in COLUMNS}
    infos = [_read_file(file_id, path, rows) for file_id, path in enumerate(paths)]
    return Traffic(flows=_flows(rows), counts=DecodeCounts(), captures=infos)


def _read_file(file_id: int, path: str, rows: dict[str, list]) -> CaptureInfo:
    """One conn.log's records appended to `rows`; what the file said about itself."""
    info = CaptureInfo(path=path, format="zeek-conn")
    try:
        info.size = Path(path).stat().st_size
    except OSError:
        raise CaptureError("no such file", file=path, hint="check the path") from None
    records = _records(path)
    bad = 0
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
            row = _row(rec)
        except (KeyError, TypeError, ValueError):
            bad += 1
            if bad == info.frames and bad >= 5:
                raise CaptureError(
                    "no connection records (no id.orig_h, id.resp_h and ts) in the first lines",
                    file=path,
                    where=f"line {number}",
                    hint="give Zeek conn.log files",
                ) from None
            info.notices.append(f"line {number}: not a connection record (skipped)")
            continue
        row["file0"] = file_id
        for k, v in row.items():
            rows[k].append(v)
    with open(path, "rb") as fh:
        info.sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
    return info


def _row(rec: dict) -> dict:
    """The flow columns of one conn.log record (raises on a record without its
    addresses or time)."""
    orig = to_int(ipaddress.ip_address(rec["id.orig_h"]))
    resp = to_int(ipaddress.ip_address(rec["id.resp_h"]))
    ts = _time(rec["ts"])
    name = str(rec.get("proto") or "").lower()
    v6 = ":" in str(rec["id.orig_h"])
    proto = ICMPV6 if name == "icmp" and v6 else PROTO_NUMBERS.get(name, 0)
    state, history = str(rec.get("conn_state") or ""), str(rec.get("history") or "")
    oport, rport = int(_number(rec.get("id.orig_p"))), int(_number(rec.get("id.resp_p")))
    resp_pkts = int(_number(rec.get("resp_pkts")))
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
    return {
        "proto": proto,
        "init": orig,
        "resp": resp,
        "init_port": 0 if icmp else oport,  # Zeek: ICMP type and code
        "resp_port": 0 if icmp else rport,
        "icmp_req": oport if icmp else -1,
        "first_ts": int(ts * 1_000_000) * 1000,
        "last_ts": int((ts + _number(rec.get("duration"))) * 1_000_000) * 1000,
        "pkts_fwd": int(_number(rec.get("orig_pkts"))),
        "pkts_rev": resp_pkts,
        "bytes_fwd": int(_number(rec.get("orig_ip_bytes"))),
        "bytes_rev": int(_number(rec.get("resp_ip_bytes"))),
        "outcome": outcome,
        "initiator_by": by,
        "close": close,
        "frame0": -1,
    }


def _flows(rows: dict[str, list]) -> Flows:
    """The flow columns conn.log gives; what it does not say (TCP flags, VLANs,
    ICMP errors, frames) stays at each column's `missing` value, so no flow
    counts as seen one way only."""
    cols = {k: np.array(v, np.int64) for k, v in rows.items() if k not in ("init", "resp")}
    cols["init_hi"], cols["init_lo"] = split_int(rows["init"])
    cols["resp_hi"], cols["resp_lo"] = split_int(rows["resp"])
    flows = Flows.from_columns(cols)
    return flows.take(np.lexsort((flows["frame0"], flows["file0"], flows["first_ts"])))
