"""Which initiators scan: one host whose forbidden attempts failed on many ports of
a host (a port scan) or on many hosts on one port (an address sweep), as Zeek's
scan policy counts them. Check adds its flows once; watch adds them tick after
tick, so a scan slower than a tick is still seen.

Only failed forbidden attempts count (refused, unanswered, blocked): a busy
client that is answered is not a scanner, and a service the matrix allows
that fails is a health problem, not a scan. Once a host is a scanner it stays
one, and its rows are no longer kept; the rows kept for the others are
bounded (`KEPT`, the oldest dropped first), so a watch that runs for weeks
stays within its memory.
"""

from __future__ import annotations

import numpy as np

from portmatrix.findings.columns import dense
from portmatrix.findings.model import Thresholds

KEPT = 1_000_000  # distinct (initiator, responder, port) attempts remembered
COLUMNS = ("ihi", "ilo", "rhi", "rlo", "port")


class ScanTally:
    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self.scanners: set[tuple[int, int]] = set()  # initiator addresses (hi, lo)
        self._rows = {c: np.zeros(0, np.uint64) for c in COLUMNS}

    def add(self, ihi, ilo, rhi, rlo, port) -> None:
        """Failed forbidden attempts: initiator, responder (upper and lower 64 bits),
        and `port` = protocol << 16 | port."""
        new = dict(zip(COLUMNS, (ihi, ilo, rhi, rlo, port), strict=True))
        new = {c: np.asarray(v).astype(np.uint64) for c, v in new.items()}
        keep = ~self.is_scanner(new["ihi"], new["ilo"])
        rows = {c: np.r_[self._rows[c], new[c][keep]] for c in COLUMNS}
        if not len(rows["ihi"]):
            return
        _, _, first = dense(*(rows[c] for c in COLUMNS))
        first.sort()  # oldest first
        rows = {c: v[first] for c, v in rows.items()}
        t = self.thresholds
        found = self._over(rows, ("ihi", "ilo", "rhi", "rlo"), t.scan_ports)
        found |= self._over(rows, ("ihi", "ilo", "port"), t.scan_hosts)
        if found.any():
            hi, lo = rows["ihi"][found], rows["ilo"][found]
            _, _, first = dense(hi, lo)
            self.scanners.update(zip(hi[first].tolist(), lo[first].tolist(), strict=True))
            rows = {c: v[~self.is_scanner(rows["ihi"], rows["ilo"])] for c, v in rows.items()}
        self._rows = {c: v[-KEPT:] for c, v in rows.items()}

    @staticmethod
    def _over(rows: dict, by: tuple[str, ...], threshold: int) -> np.ndarray:
        """Rows whose group (`by`) holds at least `threshold` distinct attempts."""
        ids, n, _ = dense(*(rows[c] for c in by))
        return np.bincount(ids, minlength=n)[ids] >= threshold

    def is_scanner(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        out = np.zeros(len(hi), bool)
        for h, low in self.scanners:  # a few hosts: each a problem of its own
            out |= (hi == np.uint64(h)) & (lo == np.uint64(low))
        return out
