"""Read captures into finished flows: sources -> decode -> flow table.

The result keeps what the reports need besides the flows: the decode buckets
(every frame accounted for), what each capture file said about itself, and
the capture's health (one-way TCP, drops, truncation).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from portmatrix.decode import decode
from portmatrix.decode.batch import DecodeCounts
from portmatrix.decode.transport import TCP
from portmatrix.dns import learn, unread
from portmatrix.flows import ACK, Flows, FlowTable
from portmatrix.sources import Capture
from portmatrix.sources.base import CaptureInfo
from portmatrix.workers import processes


def one_way_tcp(flows: Flows) -> int:
    """TCP flows seen from one side only although that side acknowledged the other:
    the capture missed half the traffic (a span mirroring one direction). An
    unanswered SYN is not one of them: it sends no ACK."""
    tcp = flows["proto"] == TCP
    fwd_only = (flows["pkts_rev"] == 0) & ((flows["flags_fwd"] & ACK) != 0)
    rev_only = (flows["pkts_fwd"] == 0) & ((flows["flags_rev"] & ACK) != 0)
    return int((tcp & (fwd_only | rev_only)).sum())


class CaptureHealth:
    """How far conclusions about missing services can be trusted, and the notices
    that say so (needs `captures`, `drops`, `counts`, `tcp_flows`, `tcp_one_way`
    and `fragments_unresolved`)."""

    @property
    def mostly_one_way(self) -> bool:
        return self.tcp_flows >= 4 and self.tcp_one_way * 2 > self.tcp_flows

    @property
    def weakened(self) -> bool:
        """Missing or unreachable services may just be traffic the capture did not see."""
        return bool(self.drops) or self.mostly_one_way

    def notices(self) -> list[str]:
        """What weakens conclusions drawn from this traffic, one sentence each."""
        out = []
        for cap in self.captures:
            if cap.truncated:
                out.append(f"{cap.path}: {cap.truncated}")
            out += [f"{cap.path}: {n}" for n in cap.notices]
        if self.drops:
            out.append(f"the capture reports {self.drops} dropped packets")
        if self.mostly_one_way:
            out.append(
                f"{self.tcp_one_way} of {self.tcp_flows} TCP flows were seen in one "
                "direction only: the capture may see half the traffic (span port "
                "mirroring one side?)"
            )
        if self.fragments_unresolved:
            out.append(
                f"{self.fragments_unresolved} IP fragments came without their "
                "first fragment: counted in port-0 flows"
            )
        if self.counts.l4_truncated:
            out.append(
                f"{self.counts.l4_truncated} TCP packets were cut by the snaplen before their flags"
            )
        if self.counts.inner_undecodable:
            out.append(
                f"{self.counts.inner_undecodable} tunnelled packets could not be "
                "decoded (their outer packets were)"
            )
        return out


@dataclass
class Traffic(CaptureHealth):
    flows: Flows
    counts: DecodeCounts
    captures: list[CaptureInfo] = field(default_factory=list)
    collisions: int = 0
    filters: object = None  # the FlowFilter the flows were narrowed by, if any

    def narrowed(self, filters) -> Traffic:
        """The same traffic with only the flows a FlowFilter's window, hosts and ports
        keep (a relative time counts from the capture's first packet)."""
        if not filters.active:
            return self
        keep = filters.traffic_mask(self.flows, self.first_ts)
        return replace(self, flows=self.flows.take(keep), filters=filters)

    @property
    def flow_count(self) -> int:
        return len(self.flows)

    @property
    def dns_names(self) -> dict[str, list[int]]:
        """Hostname -> addresses, from the DNS answers in all the captures."""
        names: dict[str, set[int]] = {}
        for info in self.captures:
            for name, addrs in info.dns.items():
                names.setdefault(name, set()).update(addrs)
        return {name: sorted(addrs) for name, addrs in names.items()}

    @property
    def packets(self) -> int:
        return self.counts.frames

    @property
    def drops(self) -> int:
        return sum(c.drops for c in self.captures)

    @property
    def tcp_flows(self) -> int:
        return int((self.flows["proto"] == TCP).sum())

    @property
    def tcp_one_way(self) -> int:
        return one_way_tcp(self.flows)

    @property
    def fragments_unresolved(self) -> int:
        return self.flows.fragments_unresolved

    @property
    def first_ts(self) -> int | None:
        return int(self.flows["first_ts"].min()) if len(self.flows) else None

    @property
    def last_ts(self) -> int | None:
        return int(self.flows["last_ts"].max()) if len(self.flows) else None


def read_file(
    file_id: int,
    path: str,
    on_batch: Callable[[int, int], None] | None = None,
    wanted: frozenset[str] = frozenset(),
) -> tuple[FlowTable, DecodeCounts, CaptureInfo]:
    """One capture file into its own flow table: the unit of parallel work. The
    `wanted` hostnames get the addresses its DNS answers give them (`info.dns`)."""
    capture = Capture(path)
    table = FlowTable(file_id=file_id)
    counts = DecodeCounts()
    names: dict[str, set[int]] = {}
    seen = 0
    for raw in capture.batches():
        rows, batch_counts = decode(raw, interfaces=capture.info.interfaces)
        counts.add(batch_counts)
        table.update(rows)
        for name, addrs in learn(raw, rows, wanted).items():
            names.setdefault(name, set()).update(addrs)
        capture.info.dns_unread += unread(rows)
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
    table = FlowTable()
    counts = DecodeCounts()
    # Merge in time order (files from several sensors, or given out of order); the
    # reports list the inputs as given.
    for part, part_counts, _ in sorted(parts, key=_first_packet):
        table.merge(part)
        counts.add(part_counts)
    infos = [info for _, _, info in parts]
    counts.check()
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
