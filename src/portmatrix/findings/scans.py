"""Which initiators scan: one host whose forbidden attempts failed on many ports of
a host (a port scan) or on many hosts on one port (an address sweep), as Zeek's
scan policy counts them. Check adds its flows once; watch adds them tick after
tick, so a scan slower than a tick is still seen.

Only failed forbidden attempts count (refused, unanswered, blocked): a busy
client that is answered is not a scanner, and a service the matrix allows
that fails is a health problem, not a scan. Attempts are kept as 64-bit hashes
of (initiator, responder, port), three sorts per call. Once a host is a scanner
it stays one, and its rows are no longer kept; the rows kept for the others are
bounded (`KEPT`, the oldest dropped first), so a watch that runs for weeks
stays within its memory.
"""

from __future__ import annotations

import numpy as np

from portmatrix.decode.keyhash import mix
from portmatrix.findings.columns import unique
from portmatrix.findings.model import Thresholds

KEPT = 1_000_000  # distinct (initiator, responder, port) attempts remembered
COLUMNS = ("target", "vpair", "hpair", "host", "hi", "lo")


class ScanTally:
    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self.scanners: dict[int, tuple[int, int]] = {}  # host hash -> address (hi, lo)
        self._keys = np.zeros(0, np.uint64)  # the scanners' hashes, sorted
        self._rows = {c: np.zeros(0, np.uint64) for c in COLUMNS}

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
        rows = {c: np.r_[self._rows[c], new[c][keep]] for c in COLUMNS}
        if not len(rows["target"]):
            return
        first, _, _ = unique(rows["target"])
        if len(first) > KEPT:
            first = np.sort(first)[-KEPT:]  # the newest
        rows = {c: v[first] for c, v in rows.items()}
        t = self.thresholds
        found = _over(rows["vpair"], t.scan_ports) | _over(rows["hpair"], t.scan_hosts)
        if found.any():
            at, _, _ = unique(rows["host"][found])
            for h, hi, lo in zip(
                rows["host"][found][at].tolist(),
                rows["hi"][found][at].tolist(),
                rows["lo"][found][at].tolist(),
                strict=True,
            ):
                self.scanners[h] = (hi, lo)
            self._keys = np.array(sorted(self.scanners), np.uint64)
            stay = ~np.isin(rows["host"], self._keys)
            rows = {c: v[stay] for c, v in rows.items()}
        self._rows = rows

    def is_scanner(self, host: np.ndarray) -> np.ndarray:
        """Per row, whether its initiator (a `mix(hi, lo)` hash) scans."""
        return np.isin(host, self._keys)


def _over(group: np.ndarray, threshold: int) -> np.ndarray:
    """Rows whose group holds at least `threshold` rows (rows are distinct attempts)."""
    _, inverse, counts = unique(group)
    return counts[inverse] >= threshold
