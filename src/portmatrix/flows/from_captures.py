"""Captures into flows: sources -> decode -> flow table, one file per unit of
work, in this process, in a pool of processes, or on a Dask cluster.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from portmatrix.decode import decode
from portmatrix.decode import names as named
from portmatrix.decode.batch import DecodeCounts
from portmatrix.decode.dns import learn, unread
from portmatrix.errors import CaptureError
from portmatrix.flows.table import FlowTable
from portmatrix.flows.traffic import Traffic
from portmatrix.sources.base import CaptureInfo
from portmatrix.sources.capture import Capture
from portmatrix.sources.workers import processes


def read_file(
    file_id: int,
    path: str,
    on_batch: Callable[[int, int], None] | None = None,
    wanted: frozenset[str] = frozenset(),
) -> tuple[FlowTable, DecodeCounts, CaptureInfo]:
    """One capture file into its own flow table: the unit of parallel work. The
    `wanted` hostnames get the addresses its DNS answers give them (`info.dns`),
    and the flows whose clients named them (TLS SNI, HTTP Host, QUIC: `info.names`).
    A file that cannot be opened as a capture at all comes back empty, its error
    in `info.unreadable`: the other files of a forensics folder are still read."""
    table = FlowTable(file_id=file_id)
    try:
        capture = Capture(path)
    except CaptureError as exc:
        return table, DecodeCounts(), CaptureInfo(path=path, unreadable=exc)
    counts = DecodeCounts()
    names: dict[str, set[int]] = {}
    seen = 0
    for raw in capture.batches():
        rows, batch_counts = decode(raw, label=capture.info.label)
        counts.add(batch_counts)
        table.update(rows)
        for name, addrs in learn(raw, rows, wanted).items():
            names.setdefault(name, set()).update(addrs)
        capture.info.dns_unread += unread(rows)
        if wanted:
            capture.info.names.add(named.learn(raw, rows, wanted))
        if on_batch:
            on_batch(capture.bytes_read - seen, len(raw))
            seen = capture.bytes_read
    if on_batch:
        on_batch(capture.bytes_read - seen, 0)
    capture.info.dns = {name: sorted(addrs) for name, addrs in sorted(names.items())}
    return table, counts, capture.info


def read_traffic(
    paths: list[str],
    on_batch: Callable[[int, int], None] | None = None,
    jobs: int = 1,
    dask: str | None = None,
    wanted: frozenset[str] = frozenset(),
) -> Traffic:
    """Read capture files into one flow table.

    Files are merged in time order (of their first packets), so a flow that spans
    two consecutive files of a rolling capture is one flow. With `jobs` > 1 files are read by a
    pool of processes (as many as the input is worth: `workers.processes`), with
    `dask` (a scheduler address) by a Dask cluster; the per-file tables merge to
    the same result as reading them one by one.
    `on_batch(bytes, packets)` reports progress; `wanted` are the hostnames to
    learn addresses for from DNS answers.
    """
    ids = list(range(len(paths)))
    if dask:
        parts = _on_dask(dask, ids, paths, wanted)
    elif (workers := processes(paths, jobs)) > 1:
        parts = _in_processes(workers, ids, paths, on_batch, wanted)
    else:
        parts = (read_file(i, p, on_batch, wanted) for i, p in zip(ids, paths, strict=True))
    parts = list(parts)
    counts = DecodeCounts()
    # Merge in time order (files from several sensors, or given out of order); the
    # reports list the inputs as given. The earliest table takes the others in (not
    # a new empty one: that would hold every flow twice while merging).
    ordered = sorted(parts, key=_first_packet)
    table = ordered[0][0] if ordered else FlowTable()
    for k, (part, part_counts, _) in enumerate(ordered):
        if k:
            table.merge(part)
        counts.add(part_counts)
    infos = [info for _, _, info in parts]
    counts.check()
    unreadable = [info.unreadable for info in infos if info.unreadable is not None]
    if unreadable and len(unreadable) == len(infos):
        raise unreadable[0]  # nothing could be read: only the error to report
    return Traffic(flows=table.finish(), counts=counts, captures=infos, collisions=table.collisions)


def _first_packet(part) -> int:
    rec = part[0].rec
    return int(rec["first_ts"].min()) if len(rec) else 0


def _in_processes(jobs, ids, paths, on_batch, wanted):
    """Files in worker processes, results in file order (merging needs the order)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Not "fork": the parent may run threads (hashing, the progress bar).
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=min(jobs, len(paths)), mp_context=context) as pool:
        for result in pool.map(read_file, ids, paths, [None] * len(paths), [wanted] * len(paths)):
            if on_batch:
                on_batch(result[2].size or 0, result[2].frames)
            yield result


def _on_dask(address: str, ids, paths, wanted):
    from portmatrix.errors import PortmatrixError
    from portmatrix.lazy import require

    distributed = require("distributed", extra="dask")
    try:
        client = distributed.Client(address, timeout="10s")
    except (OSError, ValueError) as exc:  # unreachable, or not an address at all
        raise PortmatrixError(
            f"cannot reach the Dask scheduler: {exc}",
            file=address,
            hint="check the address (tcp://HOST:8786) and that the scheduler runs",
        ) from None
    if "-" in paths:
        client.close()
        raise PortmatrixError(
            "standard input cannot be read on a Dask cluster",
            where="--dask",
            hint="give capture files the workers can read",
        )
    # Workers open the files themselves: give them absolute paths (a shared filesystem).
    paths = [os.path.abspath(p) for p in paths]
    try:
        futures = client.map(read_file, ids, paths, wanted=wanted, pure=False)
        return client.gather(futures)
    finally:
        client.close()
