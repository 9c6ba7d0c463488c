"""Which initiators scan: one host whose forbidden attempts failed on many ports of
a host (a port scan) or on many hosts on one port (an address sweep), as Zeek's
scan policy counts them. Check adds its flows once; watch adds them tick after
tick, so a scan slower than a tick is still seen.

Only failed forbidden attempts count (refused, unanswered, blocked): a busy
client that is answered is not a scanner, and a service the matrix allows
that fails is a health problem, not a scan. Attempts are kept as 64-bit hashes
of (initiator, responder, port). Once a host is a scanner
it stays one, and its rows are no longer kept; the rows kept for the others are
bounded (`KEPT`, the oldest dropped first), so a watch that runs for weeks
stays within its memory. Rows are kept sorted and counted per group as they
come, so a call costs a sort of its own attempts, not of all those kept: a
flood of a million spoofed sources (each one attempt, each kept) does not make
every tick re-sort a million rows.
"""

from __future__ import annotations

import numpy as np

from portmatrix.decode.keyhash import mix
from portmatrix.findings.model import Thresholds

KEPT = 1_000_000  # distinct (initiator, responder, port) attempts remembered
COLUMNS = ("target", "vpair", "hpair", "host")  # kept per attempt (a scanner's address
# comes from the attempt that made it one)


class _Counts:
    """Distinct attempts per group key (sorted keys and their counts), kept as rows
    come and go: adding a batch costs its own sort and a search, not a sort of all."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, np.uint64)
        self.n = np.zeros(0, np.int64)

    def _find(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.searchsorted(self.keys, u)
        hit = pos < len(self.keys)
        hit[hit] = self.keys[pos[hit]] == u[hit]
        return pos, hit

    def add(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Count `values`; (their distinct keys, each key's count now)."""
        u, c = np.unique(values, return_counts=True)
        pos, hit = self._find(u)
        self.n[pos[hit]] += c[hit]
        self.keys = np.insert(self.keys, pos[~hit], u[~hit])
        self.n = np.insert(self.n, pos[~hit], c[~hit])
        return u, self.n[np.searchsorted(self.keys, u)]

    def remove(self, values: np.ndarray) -> None:
        if not len(values):
            return
        u, c = np.unique(values, return_counts=True)
        pos, _ = self._find(u)
        self.n[pos] -= c
        kept = self.n > 0
        self.keys, self.n = self.keys[kept], self.n[kept]


class ScanTally:
    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self.scanners: dict[int, tuple[int, int]] = {}  # host hash -> address (hi, lo)
        self._keys = np.zeros(0, np.uint64)  # the scanners' hashes, sorted
        self._rows = {c: np.zeros(0, np.uint64) for c in COLUMNS}  # sorted by target
        self._age = np.zeros(0, np.int64)  # per row: when it came (for KEPT)
        self._clock = 0
        self._ports = _Counts()  # distinct ports per (initiator, responder): vpair
        self._hosts = _Counts()  # distinct responders per (initiator, port): hpair

    def add(self, ihi, ilo, rhi, rlo, port) -> None:
        """Failed forbidden attempts: initiator, responder (upper and lower 64 bits),
        and `port` = protocol << 16 | port."""
        host, resp = mix(ihi, ilo), mix(rhi, rlo)
        port = np.asarray(port).astype(np.uint64)
        new = {
            "target": mix(host, resp, port),
            "vpair": mix(host, resp),
            "hpair": mix(host, port),
            "host": host,
            "hi": np.asarray(ihi, np.uint64),
            "lo": np.asarray(ilo, np.uint64),
        }
        keep = ~np.isin(host, self._keys)
        _, first = np.unique(new["target"][keep], return_index=True)  # distinct, by target
        new = {c: v[keep][first] for c, v in new.items()}
        targets = self._rows["target"]
        pos = np.searchsorted(targets, new["target"])
        fresh = pos >= len(targets)
        fresh[~fresh] = targets[pos[~fresh]] != new["target"][~fresh]  # not seen before
        new, pos = {c: v[fresh] for c, v in new.items()}, pos[fresh]
        if not len(pos):
            return
        self._rows = {c: np.insert(self._rows[c], pos, new[c]) for c in COLUMNS}
        self._age = np.insert(self._age, pos, self._clock + np.arange(len(pos)))
        self._clock += len(pos)
        t = self.thresholds
        over = np.zeros(len(pos), bool)
        for counts, name, threshold in (
            (self._ports, "vpair", t.scan_ports),
            (self._hosts, "hpair", t.scan_hosts),
        ):
            keys, n = counts.add(new[name])
            over |= np.isin(new[name], keys[n >= threshold])
        if over.any():
            at = np.unique(new["host"][over], return_index=True)[1]
            for h, hi, lo in zip(
                new["host"][over][at].tolist(),
                new["hi"][over][at].tolist(),
                new["lo"][over][at].tolist(),
                strict=True,
            ):
                self.scanners[h] = (hi, lo)
            self._keys = np.array(sorted(self.scanners), np.uint64)
            self._drop(np.isin(self._rows["host"], self._keys))  # scanners: no rows kept
        if len(self._age) > KEPT:  # the oldest attempts go
            gone = np.zeros(len(self._age), bool)
            gone[np.argpartition(self._age, len(self._age) - KEPT)[: len(self._age) - KEPT]] = True
            self._drop(gone)

    def _drop(self, gone: np.ndarray) -> None:
        self._ports.remove(self._rows["vpair"][gone])
        self._hosts.remove(self._rows["hpair"][gone])
        self._rows = {c: v[~gone] for c, v in self._rows.items()}
        self._age = self._age[~gone]

    def known(self, scanners: dict[int, tuple[int, int]]) -> None:
        """Hosts known to scan already (a watch's state, after a restart)."""
        self.scanners.update(scanners)
        self._keys = np.array(sorted(self.scanners), np.uint64)
        self._drop(np.isin(self._rows["host"], self._keys))

    def is_scanner(self, host: np.ndarray) -> np.ndarray:
        """Per row, whether its initiator (a `mix(hi, lo)` hash) scans."""
        return np.isin(host, self._keys)
