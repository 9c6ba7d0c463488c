"""A progress bar on stderr for long reads: bytes read of the total, packets per
second, time left. Shown only on a terminal, never when stderr is piped."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress(total_bytes: int, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """Yields an `on_batch(bytes, packets)` callback, or None when not shown."""
    if not enabled or not sys.stderr.isatty() or total_bytes <= 0:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    packets = 0
    columns = (
        TextColumn("reading"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task("read", total=total_bytes, rate="")

        def on_batch(nbytes: int, npackets: int) -> None:
            nonlocal packets
            packets += npackets
            elapsed = bar.tasks[0].elapsed or 0
            rate = f"{packets / elapsed / 1e6:.2f} Mpkt/s" if elapsed > 0.5 else ""
            bar.update(task, advance=nbytes, rate=rate)

        yield on_batch
