"""Captures into flows: sources -> decode -> flow table, in this process, in a pool
of processes, or on a Dask cluster.

The unit of parallel work is a file, or a span of a large file (sources/split.py):
the spans of a file are read by several workers at once and their tables merged
as a rolling capture's files are, the SHA-256 still taken of the whole file.
A span's reader cannot know what a reader of the whole file would have known
when it got there (the boundary itself, interfaces described along the way,
fragments of a datagram on both sides); each span says what it saw, and when a
boundary does not join up exactly, the file is read again in one piece: the
flows are always those of reading the file whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from portmatrix.decode import decode
from portmatrix.decode import names as named
from portmatrix.decode.batch import DecodeCounts
from portmatrix.decode.dns import learn, unread
from portmatrix.decode.reassembly import fragment_keys
from portmatrix.errors import CaptureError
from portmatrix.flows.table import FlowTable
from portmatrix.flows.traffic import Traffic
from portmatrix.sources import split, workers
from portmatrix.sources.base import CaptureInfo
from portmatrix.sources.capture import Capture
from portmatrix.sources.digest import FileDigest


def read_file(
    file_id: int,
    path: str,
    on_batch: Callable[[int, int], None] | None = None,
    wanted: frozenset[str] = frozenset(),
    digest: str | None = None,
) -> tuple[FlowTable, DecodeCounts, CaptureInfo]:
    """One capture file into its own flow table: the unit of parallel work. The
    `wanted` hostnames get the addresses its DNS answers give them (`info.dns`),
    and the flows whose clients named them (TLS SNI, HTTP Host, QUIC: `info.names`).
    A file that cannot be opened as a capture at all comes back empty, its error
    in `info.unreadable`: the other files of a forensics folder are still read.
    `digest`, when the file's SHA-256 is known already, is not computed again."""
    table = FlowTable(file_id=file_id)
    try:
        capture = Capture(path, digest=digest is None)
    except CaptureError as exc:
        return table, DecodeCounts(), CaptureInfo(path=path, unreadable=exc)
    counts, _ = _read(capture, table, wanted, on_batch)
    if digest is not None:
        capture.info.sha256 = digest
    return table, counts, capture.info


@dataclass
class SpanPart:
    """What a worker made of one span of a file, and what its boundaries need."""

    span: split.Span
    table: FlowTable
    counts: DecodeCounts
    info: CaptureInfo
    end: int  # where its last complete record ended
    changed: bool  # described interfaces or a section, or named some (NFLOG)
    timeless: bool  # its first packet took its time from the packet before it
    seen: np.ndarray  # fragment_keys of every fragment in the span
    held: np.ndarray  # open_keys of its fragment tracking at its end


def read_span(file_id: int, span: split.Span, wanted: frozenset[str] = frozenset()) -> SpanPart:
    """One span of a file into its own flow table; frames numbered from the span's."""
    table = FlowTable(file_id=file_id)
    capture = split.SpanCapture(span)
    counts, extra = _read(capture, table, wanted, None, watch=True)
    return SpanPart(
        span,
        table,
        counts,
        capture.info,
        capture.end,
        capture.context_changed,
        extra["timeless_start"],
        extra["seen"],
        table.fragments.open_keys(),
    )


def _read(capture, table: FlowTable, wanted, on_batch, watch: bool = False):
    """Every batch of `capture` decoded into `table`: (decode counts, what a span
    needs to know about its fragments and first packet when `watch`)."""
    counts = DecodeCounts()
    names: dict[str, set[int]] = {}
    seen, timeless, sent = [], False, 0
    capture.reuse_buffers()  # nothing here keeps a batch past the next
    # Closed on every path here, not later by the garbage collector: a Ctrl-C that
    # lands in that late cleanup prints "Exception ignored" and a traceback.
    batches = capture.batches()
    try:
        for raw in batches:
            if watch and not counts.frames:  # the first packet's time from before the span?
                timeless = any(m is not None and m[0] for m in (raw.ts_carried, raw.ts_unknown))
            rows, batch_counts = decode(raw, label=capture.info.label)
            counts.add(batch_counts)
            if watch:
                seen.append(fragment_keys(rows))
            table.update(rows)
            for name, addrs in learn(raw, rows, wanted).items():
                names.setdefault(name, set()).update(addrs)
            capture.info.dns_unread += unread(rows)
            if wanted:
                capture.info.names.add(named.learn(raw, rows, wanted))
            if on_batch:
                on_batch(capture.bytes_read - sent, len(raw))
                sent = capture.bytes_read
    finally:
        batches.close()
    if on_batch:
        on_batch(capture.bytes_read - sent, 0)
    capture.info.dns = {name: sorted(addrs) for name, addrs in sorted(names.items())}
    keys = np.unique(np.concatenate(seen)) if seen else np.zeros(0, np.uint64)
    return counts, {"seen": keys, "timeless_start": timeless}


def read_traffic(
    paths: list[str],
    on_batch: Callable[[int, int], None] | None = None,
    jobs: int = 1,
    dask: str | None = None,
    wanted: frozenset[str] = frozenset(),
) -> Traffic:
    """Read capture files into one flow table.

    Files are merged in time order (of their first packets), so a flow that spans
    two consecutive files of a rolling capture is one flow. With `jobs` > 1,
    files and spans of large files are read by a pool of processes (as many as
    pay for themselves: `sources.workers`), with `dask` (a scheduler address) by
    a Dask cluster; the tables merge to the same result as reading the files one
    by one. `on_batch(bytes, packets)` reports progress; `wanted` are the
    hostnames to learn addresses for from DNS answers.
    """
    ids = list(range(len(paths)))
    if dask:
        parts = _on_dask(dask, ids, paths, wanted)
    else:
        plan = _plan(paths, jobs)
        if plan.processes > 1:
            parts = _in_processes(plan, paths, on_batch, wanted)
        else:
            parts = (read_file(i, p, on_batch, wanted) for i, p in zip(ids, paths, strict=True))
    parts = list(parts)
    counts = DecodeCounts()
    # Merge in time order (files from several sensors, or given out of order); the
    # reports list the inputs as given. The earliest table takes the others in (not
    # a new empty one: that would hold every flow twice while merging).
    ordered = sorted(range(len(parts)), key=lambda k: _first_packet(parts[k][0]))
    table = parts[ordered[0]][0] if ordered else FlowTable()
    infos = [info for _, _, info in parts]
    for k in ordered:
        part, part_counts, _ = parts[k]
        parts[k] = None  # let each table go once merged
        if part is not table:
            table.merge(part)
        counts.add(part_counts)
    counts.check()
    unreadable = [info.unreadable for info in infos if info.unreadable is not None]
    if unreadable and len(unreadable) == len(infos):
        raise unreadable[0]  # nothing could be read: only the error to report
    return Traffic(flows=table.finish(), counts=counts, captures=infos, collisions=table.collisions)


def _first_packet(table: FlowTable) -> int:
    first = table.rec["first_ts"]
    return int(first.min()) if len(first) else 0


# Planning: how many processes, and which spans ------------------------------------


@dataclass
class Plan:
    processes: int = 1
    method: str = "fork"
    spans: dict[int, list[split.Span]] = field(default_factory=dict)  # file index -> spans


def _plan(paths: list[str], jobs: int) -> Plan:
    """As many processes as pay for themselves (the reading and hashing rates
    measured on a sample of the largest input), and spans of the files too large
    for one."""
    # Forking is cheap, but not safe while other threads run (a progress bar,
    # a caller's): then workers start from a fork server.
    method = "fork" if threading.active_count() == 1 and hasattr(os, "fork") else "forkserver"
    start = workers.START[method]
    if not workers.could_pay(paths, jobs, start):
        return Plan(method=method)
    sizes = [workers.file_size(p) for p in paths]
    largest = max(range(len(paths)), key=sizes.__getitem__)
    decode, digest = (sum(sizes) * rate for rate in _rates(paths[largest]))
    spanned = len(paths) == 1 or sizes[largest] > sum(sizes) / 2
    processes = workers.worth(decode, digest, jobs, start, split=spanned)
    if processes <= 1:
        return Plan(method=method)
    plan = Plan(processes, method)
    share = sum(sizes) / processes
    for k, (path, size) in enumerate(zip(paths, sizes, strict=True)):
        pieces = min(processes, round(size / share))
        if pieces > 1 and (spans := split.cut(path, pieces)):
            plan.spans[k] = spans
    if len(paths) == 1 and not plan.spans:
        return Plan(method=method)
    return plan


def _rates(path: str) -> tuple[float, float]:
    """Seconds per byte this process takes, now, to read a capture like `path` into
    flows and to hash it (its first chunk; the sample is thrown away)."""
    table = FlowTable()
    try:
        capture = Capture(path, digest=False)  # the digest is timed on its own below
    except CaptureError:
        return workers.FASTEST, 0.0
    took = time.process_time()
    batches = capture.batches()
    try:
        raw = next(batches, None)
        if raw is None:
            return workers.FASTEST, 0.0
        table.update(decode(raw)[0])
        table.finish()
        reading = time.process_time() - took
        used = max(int(raw.offset[-1] + raw.caplen[-1]) if len(raw) else 1, 1)
        took = time.process_time()
        hashlib.sha256(raw.data[:used])
        digest = time.process_time() - took
        return reading / used, digest / used
    finally:
        batches.close()


def _in_processes(plan: Plan, paths, on_batch, wanted):
    """Files and spans in worker processes; each file's (table, counts, info) in file
    order. The whole-file digests of the split files are taken here meanwhile, on
    threads, while the spans that arrive are merged (`_Joined`)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context(plan.method)
    units = [(k, span) for k in range(len(paths)) for span in plan.spans.get(k, [None])]
    processes = min(plan.processes, len(units))
    with contextlib.ExitStack() as owned:
        pool = owned.enter_context(ProcessPoolExecutor(max_workers=processes, mp_context=context))
        futures = [
            pool.submit(read_span, k, span, wanted)
            if span
            else pool.submit(read_file, k, paths[k], None, wanted)
            for k, span in units
        ]
        digests = {k: FileDigest(paths[k]) for k in plan.spans}
        for digest in digests.values():
            owned.callback(digest.close)
        joined = {k: _Joined() for k in plan.spans}
        whole: dict[int, tuple] = {}
        for (k, span), future in zip(units, futures, strict=True):
            result = future.result()
            if on_batch:
                info = result.info if span else result[2]
                on_batch((span.end - span.start) if span else (info.size or 0), info.frames)
            if span:
                joined[k].add(result)
            else:
                whole[k] = result
        sha256 = {k: digest.hexdigest() for k, digest in digests.items()}
    for k, path in enumerate(paths):
        yield _of_spans(k, path, joined[k], sha256[k], wanted) if k in joined else whole.pop(k)


def _of_spans(file_id: int, path: str, joined: _Joined, digest: str, wanted):
    """One file's (table, counts, info) from its spans joined, or, where a boundary
    did not join up, from reading it again in one piece."""
    if joined.exact:
        return joined.result(digest)
    return read_file(file_id, path, None, wanted, digest)


class _Joined:
    """The spans of one file merged into the first one's table as they arrive, in
    file order, while each boundary joins up exactly: a reader of the whole file
    would have made the same of each span. That is, each span but the last
    ended, undamaged, exactly where the next began, and described or named no
    interfaces (the spans after it would number theirs otherwise); no span after
    the first began with a packet whose time came from before it; no fragment in
    a span could have been matched on something the spans before it left open;
    and at most one span had notices (a reader of the whole file may have said
    them in one). Merging as they come keeps one table and the arriving one in
    memory, not every span's at once."""

    def __init__(self) -> None:
        self.exact = True
        self.table: FlowTable | None = None
        self.counts = DecodeCounts()
        self.info: CaptureInfo | None = None
        self.last: CaptureInfo | None = None
        self.frames = 0
        self.names: dict[str, set[int]] = {}
        self.held = np.zeros(0, np.uint64)  # fragment keys the spans so far left open
        self.noticed = 0  # spans with notices
        self.before: SpanPart | None = None

    def add(self, part: SpanPart) -> None:
        if not self.exact:
            return
        self.noticed += bool(part.info.notices)
        if self.noticed > 1 or (self.before is not None and not self._joins(self.before, part)):
            self.exact, self.table = False, None  # its memory goes now
            return
        if self.table is None:
            self.table, self.info = part.table, part.info
        else:
            part.table.renumber(self.frames)
            self.table.merge(part.table)  # which spends it: its memory goes meanwhile
            self.info.stats.update(part.info.stats)
            self.info.notices += part.info.notices
            self.info.dns_unread += part.info.dns_unread
            self.info.names.add(part.info.names)
        self.counts.add(part.counts)
        for name, addrs in part.info.dns.items():
            self.names.setdefault(name, set()).update(addrs)
        self.frames += part.info.frames
        self.last = part.info
        part.table = None
        self.before = part

    def _joins(self, before: SpanPart, part: SpanPart) -> bool:
        self.held = np.union1d(self.held, before.held)
        if before.end != part.span.start or before.info.truncated or before.changed:
            return False
        return not (part.timeless or np.isin(part.seen, self.held).any())

    def result(self, digest: str) -> tuple[FlowTable, DecodeCounts, CaptureInfo]:
        info, last = self.info, self.last
        info.truncated = _renumbered(last.truncated, self.frames - last.frames)
        info.frames, info.bytes_read, info.sha256 = self.frames, last.bytes_read, digest
        info.interfaces = last.interfaces  # the first span's, and any the last one added
        info.dns = {name: sorted(addrs) for name, addrs in sorted(self.names.items())}
        return self.table, self.counts, info


def _renumbered(message: str, frames: int) -> str:
    """A span's message about where reading stopped, its record number counted from
    the file's start."""
    if not message or not frames:
        return message
    return re.sub(r"record (\d+)", lambda m: f"record {int(m[1]) + frames}", message, count=1)


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
