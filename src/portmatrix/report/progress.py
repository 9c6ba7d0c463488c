"""A progress bar on stderr for long reads: bytes read of the total, packets per
second, time left. Shown only on a terminal, never when stderr is piped, and
only once a read has taken half a second: a small file prints its report
without a bar flickering before it. Once a command has shown one bar, the bar
of its next pass over the inputs (evidence's extracting, check's labelling)
shows at once: the run is a long one, and a pause without a bar looks stuck."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

DELAY = 0.5  # seconds of reading before the bar appears


@contextlib.contextmanager
def progress(
    total_bytes: int, enabled: bool, label: str = "reading"
) -> Iterator[Callable[[int, int], None] | None]:
    """Yields an `on_batch(bytes, packets)` callback, or None when not shown;
    `label` says which pass it is where a command reads its inputs twice."""
    from portmatrix.console import isatty

    if not enabled or not isatty(sys.stderr) or total_bytes <= 0:
        yield None
        return
    bar = _Bar(total_bytes, label)
    try:
        yield bar.on_batch
    finally:
        bar.close()


class _Bar:
    shown_before = False  # a bar of this process has been on the terminal

    def __init__(self, total_bytes: int, label: str) -> None:
        self.delay = 0.0 if _Bar.shown_before else DELAY
        self.total = total_bytes
        self.label = label
        self.start = time.monotonic()
        self.done = 0
        self.packets = 0
        self.shown = None  # (rich Progress, task) once started

    def on_batch(self, nbytes: int, npackets: int) -> None:
        self.done += nbytes
        self.packets += npackets
        elapsed = time.monotonic() - self.start
        if self.shown is None:
            if elapsed < self.delay:
                return
            self._show()
            _Bar.shown_before = True
        bar, task = self.shown
        rate = f"{self.packets / elapsed / 1e6:.2f} Mpkt/s" if elapsed > 0.5 else ""
        bar.update(task, completed=self.done, rate=rate)

    def _show(self):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn(self.label),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
        )
        bar = Progress(*columns, console=Console(file=sys.stderr), transient=True)
        task = bar.add_task("read", total=self.total, completed=self.done, rate="")
        # Known before it starts: a Ctrl-C from here on still stops it in close()
        # (else its refresh thread draws on after the error line, the cursor hidden).
        self.shown = bar, task
        bar.start()

    def close(self) -> None:
        if self.shown is not None:
            self.shown[0].stop()
