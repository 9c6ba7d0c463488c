"""What the capture lost, per interface, each packet counted once, known while it runs.

Three counts, none overlapping:
- at the capture (`TapCounter`, see sources/offered.py): packets the kernel
  offered minus packets that reached portmatrix. Offered up to a moment t is
  compared with the packets captured with a timestamp up to t, once the capture
  has delivered everything up to t (a packet of that interface half a second
  later arrived — CPUs stamp packets side by side, so a few come out of order —
  or the link has been quiet for a while): what is still in dumpcap's buffer or
  the pipe is `backlog`, not lost;
- at the interface: what the card could not take in (`interface_drops`);
- after the stop: packets that arrived once `--duration` or a signal had ended
  the watch and its second of grace ran out: read and counted, not analysed.

Without a TapCounter (no CAP_NET_RAW, an `any` interface, a filter naming VLANs)
the capture's loss is dumpcap's own count from the statistics it writes when it
stops — halved on a loopback interface, where dumpcap's buffer fills with both
copies of each packet and so counts every lost packet twice.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from portmatrix.sources.offered import TapCounter, interface_drops, is_loopback

QUIET = 1_500_000_000  # ns with nothing to read after which all before is delivered
ORDER = 500_000_000  # ns: how far out of time order packets may come (CPUs side by side)
MAX_PENDING = 3600  # moments waiting to be settled (an hour of ticks)


class DropMeter:
    def __init__(self, ifaces: list[str], counter: TapCounter | None, start_ns: int) -> None:
        self.ifaces = list(ifaces)
        self.counter = counter
        self.start = start_ns  # packets captured before this are not compared
        n = len(self.ifaces)
        self.captured = np.zeros(n, np.int64)  # since start, by interface
        self.at_capture = np.zeros(n, np.int64)  # settled loss at the capture
        self.offered = np.zeros(n, np.int64)  # the latest reading
        self.nic_start = np.array(interface_drops(self.ifaces), np.int64)
        self.at_interface = np.zeros(n, np.int64)
        self.unanalysed = 0
        # Moments to settle: (t, offered at t, captured with a time up to t so far,
        # per interface whether settled).
        self._pending: deque[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = deque()
        self.isb_used = False

    @property
    def live(self) -> bool:
        """Whether loss at the capture is known while it runs."""
        return self.counter is not None

    def check_names(self, names: list[str]) -> None:
        """The capture's interface names (from its interface blocks): unless they are
        the interfaces counted, the counts compare nothing (a stand-in replaying a
        file, say), and loss is taken from the capture's own statistics."""
        if self.counter is not None and names[: len(self.ifaces)] != self.ifaces:
            self.counter.close()
            self.counter = None
            self._pending.clear()

    def captured_batch(self, iface: np.ndarray, ts: np.ndarray) -> None:
        """A batch read from the capture (its interface numbers and timestamps)."""
        n = len(self.ifaces)
        iface = np.minimum(iface, n - 1)
        keep = ts >= self.start
        iface, ts = iface[keep], ts[keep]
        for i in range(n) if len(ts) else ():
            mine = np.sort(ts[iface == i])
            if not len(mine):
                continue
            self.captured[i] += len(mine)
            if not self._pending:
                continue
            moments = np.array([t for t, _, _, _ in self._pending])
            upto = np.searchsorted(mine, moments, side="right")
            newest = int(mine[-1])
            for (t, offered, got, done), k in zip(self._pending, upto.tolist(), strict=True):
                if done[i]:
                    continue
                got[i] += k
                # Packets come nearly in time order (CPUs stamp them side by side):
                # once one ORDER later than t came, all up to t have.
                if newest > t + ORDER:
                    self._settle(i, offered, got, done)
        self._forget_settled()

    def _settle(self, i: int, offered, got, done) -> None:
        self.at_capture[i] = max(self.at_capture[i], int(offered[i] - got[i]))
        done[i] = True

    def sample(self, now_ns: int | None = None, quiet: bool = False) -> None:
        """Read the counters (once a tick). The moment is taken after the reading
        (`now_ns` stands in for it in tests): every packet counted by then was
        stamped before it. `quiet`: nothing waits to be read, so what was offered
        long enough ago has arrived or is lost."""
        self.at_interface = np.array(interface_drops(self.ifaces), np.int64) - self.nic_start
        if self.counter is None:
            return
        self.offered = np.array(self.counter.read(), np.int64)
        now_ns = time.time_ns() if now_ns is None else now_ns
        if len(self._pending) < MAX_PENDING:
            n = len(self.ifaces)
            # Whatever was read before now was stamped before now.
            self._pending.append(
                (now_ns, self.offered.copy(), self.captured.copy(), np.zeros(n, bool))
            )
        if quiet:
            for t, offered, got, done in self._pending:
                if now_ns - t < QUIET:
                    break
                for i in np.flatnonzero(~done).tolist():
                    self._settle(i, offered, got, done)
        self._forget_settled()

    def _forget_settled(self) -> None:
        while self._pending and self._pending[0][3].all():
            self._pending.popleft()

    def settle_all(self) -> None:
        """The capture has ended and everything it delivered was read."""
        for _, offered, got, done in self._pending:
            for i in np.flatnonzero(~done).tolist():
                self._settle(i, offered, got, done)
        self._forget_settled()

    def from_statistics(self, stats: dict) -> None:
        """No counter of our own: dumpcap's statistics at the end of the capture
        (`CaptureInfo.stats`: interface number -> InterfaceStats)."""
        if self.counter is not None:
            return
        for number, s in stats.items():
            i = min(number, len(self.ifaces) - 1)
            lost = (s.dropped or 0) + (s.os_dropped or 0)
            if is_loopback(self.ifaces[i]):
                lost //= 2
            self.at_capture[i] = lost
            self.isb_used = True

    def backlog(self) -> np.ndarray:
        """Offered but neither captured nor known lost yet: in dumpcap's buffer or
        the pipe (or about to be counted lost)."""
        if self.counter is None:
            return np.zeros(len(self.ifaces), np.int64)
        return np.maximum(0, self.offered - self.captured - self.at_capture)

    def by_interface(self) -> dict[str, int]:
        """Packets lost so far, by interface (the unanalysed ones not included)."""
        lost = self.at_capture + np.maximum(self.at_interface, 0)
        return {name: int(n) for name, n in zip(self.ifaces, lost, strict=True)}

    def total(self) -> int:
        return sum(self.by_interface().values()) + self.unanalysed

    def remarks(self) -> list[str]:
        """What the final report says about the loss, when there was any."""
        out = []
        at_capture, at_nic = int(self.at_capture.sum()), int(np.maximum(self.at_interface, 0).sum())
        if at_capture:
            how = (
                "dumpcap's statistics when it stopped"
                + (", halved on loopback, where it counts each loss twice" if self.isb_used else "")
                if self.counter is None
                else "packets offered by the kernel minus packets captured"
            )
            out.append(f"{at_capture} packets were lost at the capture ({how})")
        if at_nic:
            out.append(f"{at_nic} packets were dropped by the interface card before any capture")
        if self.unanalysed:
            out.append(
                f"{self.unanalysed} packets arrived after the watch was stopped and were "
                "counted, not analysed"
            )
        return out
