"""`--state FILE`: what a watch announced and counted, kept across restarts.

Saved atomically and durably (files.Staged: a temporary file beside it, flushed
to disk, renamed over it, the folder flushed too) every report and on exit;
read at start, before the capture. A restart then
announces nothing it announced before (a finding that gets worse still is),
and the final report still holds what earlier runs found, with their
counters: the findings (their flows, packets, hosts, ports...), the roll-ups
reached (many sources, many ports, scanners: their hosts are not told one by
one again), the coverage of every rule, the required services' alarms, the
traffic totals and drops, and the addresses DNS gave the roles' hostnames.
The time watch was not running is not covered, and the report says since when
it counts.

The file is JSON: `{"portmatrix-watch-state": 1, "matrix": NAME, ...}`. One
that is not (damaged, or another program's), or that a watch of another
matrix wrote, is refused with one line before anything starts: move it away
to start afresh. Host and port sets are base64 of their little-endian arrays.
"""

from __future__ import annotations

import base64
import json
from dataclasses import fields

import numpy as np

from portmatrix.decode.batch import DecodeCounts
from portmatrix.errors import PortmatrixError
from portmatrix.files import staged
from portmatrix.findings.model import Finding
from portmatrix.findings.tracked import Tracked
from portmatrix.times import stamp
from portmatrix.watch.watcher import Watcher

MARK, VERSION = "portmatrix-watch-state", 1
MOVE_AWAY = "move it away (or give another --state file) to start afresh"


def _array(a: np.ndarray) -> str:
    return base64.b64encode(
        np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
    ).decode()


def _unarray(text: str, dtype) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), np.dtype(dtype).newbyteorder("<")).astype(dtype)


def _tracked(t: Tracked, worded: Finding) -> dict:
    return {
        "finding": worded.to_dict(),
        "flows": t.flows,
        "packets": t.packets,
        "bytes": t.bytes,
        "first": t.first,
        "last": t.last,
        "outcomes": t.outcomes,
        "severity": t.severity,
        "heuristic": t.heuristic,
        "silent": t.silent,
        "hosts": [_array(h) for h in t.hosts],
        "named": [list(n) for n in t.named],
        "pairs": [[a, b, n] for (a, b), n in t.pairs.items()],
        "frames": t.frames,
        "community": t.community,
        "ports": _array(t.ports),
        "answered": _array(t.answered),
    }


def _untracked(d: dict) -> Tracked:
    known = {f.name for f in fields(Finding)}
    finding = Finding(**{k: v for k, v in d["finding"].items() if k in known})
    return Tracked(
        problem=None,
        finding=finding,
        flows=int(d["flows"]),
        packets=int(d["packets"]),
        bytes=int(d["bytes"]),
        first=str(d["first"]),
        last=str(d["last"]),
        outcomes={str(k): int(v) for k, v in d["outcomes"].items()},
        severity=int(d["severity"]),
        heuristic=bool(d["heuristic"]),
        silent=bool(d["silent"]),
        hosts=tuple(_unarray(h, np.uint64) for h in d["hosts"]),
        named=tuple(list(n) for n in d["named"]),
        pairs={(a, b): int(n) for a, b, n in d["pairs"]},
        frames=list(d["frames"]),
        community=list(d["community"]),
        ports=_unarray(d["ports"], np.int64),
        answered=_unarray(d["answered"], np.int64),
    )


def snapshot(w: Watcher, drops: int) -> dict:
    """Everything a later run needs, as JSON-ready data."""
    tally = w.coverage
    counts = w.counts
    return {
        MARK: VERSION,
        "matrix": w.matrix.name,
        "saved": stamp(),
        "since": w.since,
        "runs": w.runs,
        "announced": dict(w.announced),
        "verdict_of": dict(w.verdict_of),
        "findings": {
            fid: _tracked(t, t.worded(tally.rules) if t.problem is not None else t.finding)
            for fid, t in w.done.items()
        },
        "coverage": {
            rid: {
                "flows": c.flows,
                "established": c.established,
                "failed": c.failed,
                "examples": c.examples,
                "pairs": _array(tally.pairs_of(rid)),
            }
            for rid, c in tally.rules.items()
        },
        "window": w.window.to_dict(),
        "roll_ups": {
            "sources": sorted(list(k) for k in w.grouper.sources.reached),
            "ports": sorted(list(k) for k in w.grouper.ports.reached),
            "scanners": [[h, hi, lo] for h, (hi, lo) in sorted(w.grouper.scans.scanners.items())],
        },
        "names": {name: sorted(addresses) for name, addresses in w.names.items()},
        "traffic": {
            "frames": counts.frames,
            "ip": counts.ip,
            "non_ip": {str(k): v for k, v in counts.non_ip.items()},
            "unsupported": {str(k): v for k, v in counts.unsupported.items()},
            "undecodable": dict(counts.undecodable),
            "l4_truncated": counts.l4_truncated,
            "inner_undecodable": counts.inner_undecodable,
            "ts_carried": counts.ts_carried,
            "verdicts": dict(w.verdicts),
            "flows_done": w.flows_done,
            "tcp_flows": w.tcp_flows,
            "tcp_one_way": w.tcp_one_way,
            "first_ts": w.first_ts,
            "last_ts": w.last_ts,
            "drops": drops,
        },
    }


def restore(w: Watcher, doc: dict) -> None:
    """Put a snapshot back into a fresh Watcher (KeyError, TypeError, ValueError
    when the document is not one)."""
    w.since = doc["since"]
    w.runs = int(doc["runs"]) + 1
    w.announced = {str(k): str(v) for k, v in doc["announced"].items()}
    w.verdict_of = {str(k): str(v) for k, v in doc["verdict_of"].items()}
    w.done = {str(fid): _untracked(d) for fid, d in doc["findings"].items()}
    for rid, c in doc["coverage"].items():
        if rid in w.coverage.rules:
            cov = w.coverage.rules[rid]
            cov.flows, cov.established, cov.failed = (
                int(c[k]) for k in ("flows", "established", "failed")
            )
            cov.examples = [str(e) for e in c["examples"]]
            w.coverage.restore_pairs(rid, _unarray(c["pairs"], np.uint64))
    w.window.restore(doc["window"])
    roll_ups = doc["roll_ups"]
    w.grouper.sources.reached |= {tuple(k) for k in roll_ups["sources"]}
    w.grouper.ports.reached |= {tuple(k) for k in roll_ups["ports"]}
    w.grouper.scans.known({int(h): (int(hi), int(lo)) for h, hi, lo in roll_ups["scanners"]})
    w.names = {str(n): {int(a) for a in addresses} for n, addresses in doc["names"].items()}
    if w.names:
        w.relearn()
    t = doc["traffic"]
    w.counts = DecodeCounts(
        frames=int(t["frames"]),
        ip=int(t["ip"]),
        non_ip={int(k): int(v) for k, v in t["non_ip"].items()},
        unsupported={int(k): int(v) for k, v in t["unsupported"].items()},
        undecodable={str(k): int(v) for k, v in t["undecodable"].items()},
        l4_truncated=int(t["l4_truncated"]),
        inner_undecodable=int(t["inner_undecodable"]),
        ts_carried=int(t["ts_carried"]),
    )
    w.verdicts.update({str(k): int(v) for k, v in t["verdicts"].items()})
    w.flows_done, w.tcp_flows, w.tcp_one_way = (
        int(t[k]) for k in ("flows_done", "tcp_flows", "tcp_one_way")
    )
    w.first_ts = None if t["first_ts"] is None else int(t["first_ts"])
    w.last_ts = None if t["last_ts"] is None else int(t["last_ts"])
    w.carried_drops = int(t["drops"])


class StateFile:
    """The state file of one watch: read (and checked) at start, saved as it runs."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.saves = 0

    def load(self, w: Watcher) -> bool:
        """Restore `w` from the file if there is one (True); a file that is not a
        state of this matrix's watch is a one-line error."""
        try:
            with open(self.path, encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            return False
        except (OSError, UnicodeDecodeError) as exc:
            raise self._error(f"cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise self._error(f"not a portmatrix watch state (not JSON: {exc})") from None
        if not isinstance(doc, dict) or MARK not in doc:
            raise self._error("not a portmatrix watch state (no state mark in it)")
        if doc[MARK] != VERSION:
            raise self._error(f"a state of version {doc[MARK]!r}; this portmatrix reads {VERSION}")
        if doc.get("matrix") != w.matrix.name:
            raise self._error(
                f"saved by a watch of matrix {doc.get('matrix')!r}, not {w.matrix.name!r}"
            )
        try:
            restore(w, doc)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self._error(f"damaged state ({type(exc).__name__}: {exc})") from None
        return True

    def _error(self, what: str) -> PortmatrixError:
        return PortmatrixError(what, file=self.path, where="--state", hint=MOVE_AWAY)

    def save(self, w: Watcher, meter) -> None:
        """Write the state atomically and durably (files.Staged): the old file or
        the new one, never half, even after a power cut."""
        text = json.dumps(snapshot(w, w.carried_drops + meter.total()), separators=(",", ":"))
        with staged(durable=True) as batch:
            batch.write_text(self.path, text, option="--state")
        self.saves += 1
