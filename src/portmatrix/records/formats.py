"""The flow-record formats portmatrix reads, detected from their content, and the
reading of many files into one Traffic.

`--flowlog` takes files, folders (walked, with the S3 layouts of AWS) and
globs; each file's format is detected from its first bytes (`FORMATS`, in
order), or forced with `--flowlog-format`. Files are read one by one or by a
pool of processes (`--jobs`); each file's records are reduced as soon as it
is read, and the reduced records are joined into flows once, so memory grows
with flows, not with records, and the result does not depend on file order.
"""

from __future__ import annotations

import contextlib
import gzip
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from portmatrix.decode.batch import DecodeCounts
from portmatrix.errors import CaptureError
from portmatrix.flows.model import FLOW_COLUMNS, Flows
from portmatrix.flows.traffic import Traffic
from portmatrix.records import aws, azure, gcp, netflow
from portmatrix.records.directed import concat, join, reduce
from portmatrix.records.source import FileRead, head, is_gzip


@dataclass(frozen=True)
class Format:
    name: str
    title: str
    sniff: Callable[[bytes], bool]  # does the start of the (decompressed) content look like it
    read: Callable[[int, str, FileRead], None]
    remark: str = ""  # what the source cannot know, said once in the notices


def _sniff_zeek(data: bytes) -> bool:
    first = data.lstrip()[:4096]
    return first.startswith((b"#separator", b"#fields")) or (
        first.startswith(b"{") and b'"id.orig_h"' in first.split(b"\n", 1)[0]
    )


def _read_zeek(file_id: int, path: str, out: FileRead) -> None:
    from portmatrix.records.zeek import read_conn_logs

    traffic = read_conn_logs([path])
    flows = traffic.flows
    flows.cols["file0"] = np.where(flows["file0"] >= 0, file_id, -1)
    out.flows, out.own_info = flows, traffic.captures[0]
    out.format, out.rows = "zeek-conn", len(flows)


FORMATS: dict[str, Format] = {
    "netflow": Format(
        "netflow",
        "NetFlow v5/v9 and IPFIX in nfdump's files (read through nfdump)",
        netflow.sniff,
        netflow.read,
        netflow.REMARK,
    ),
    "aws": Format(
        "aws", "AWS VPC Flow Logs (S3 text, any field order, or Parquet)", aws.sniff, aws.read
    ),
    "azure": Format(
        "azure",
        "Azure VNet flow logs and NSG flow logs version 2 (JSON)",
        azure.sniff,
        azure.read,
        azure.REMARK,
    ),
    "gcp": Format(
        "gcp",
        "GCP VPC Flow Logs as exported (JSON lines or a JSON array)",
        gcp.sniff,
        gcp.read,
        gcp.REMARK,
    ),
    "zeek": Format("zeek", "Zeek conn.log (TSV or JSON lines)", _sniff_zeek, _read_zeek),
}
"""Every format, in the order detection tries them (keep cli._FLOWLOG_FORMATS equal)."""

FOLD = 4 << 20  # reduced records (~110 bytes each) worth reducing again, to merge them
HINT = "give AWS, Azure or GCP flow logs, nfdump files or Zeek conn.log — or --flowlog-format"


def detect(path: str) -> str | None:
    """The name of the format the file's content has, or None."""
    data = head(path)
    if not data:
        return None
    for fmt in FORMATS.values():
        if fmt.sniff(data):
            return fmt.name
    return None


def input_kind(fmt: str | None = None):
    """What folders and globs keep for --flowlog (walked with sub-folders, for the S3
    layouts of AWS): files whose content is a known format, or `fmt`."""
    from portmatrix.sources.inputs import InputKind

    if fmt:
        sniff = FORMATS[fmt].sniff
        noun = "Zeek log" if fmt == "zeek" else f"{fmt} flow log"
        return InputKind(noun, lambda path: sniff(head(path)), HINT, recursive=True)
    return InputKind("flow log", lambda path: detect(path) is not None, HINT, recursive=True)


def check_inputs(paths: list[str], fmt: str | None = None) -> None:
    """Before the long read: every file named is one portmatrix can read."""
    for path in paths:
        if path == "-":
            raise CaptureError(
                "flow records are read from files, not standard input",
                file="-",
                hint="save them to a file and give its path",
            )
        if fmt is None and detect(path) is None:
            raise CaptureError(
                "not a flow log of a known format (AWS, Azure or GCP flow logs, nfdump "
                "files, Zeek conn.log)",
                file=path,
                hint="check the file, or name its format with --flowlog-format",
            )


@contextlib.contextmanager
def _small_pages():
    """numpy asks the kernel for huge pages for large arrays; where the kernel then
    compacts memory on the spot (transparent_hugepage/defrag = madvise, Debian's
    default), the many large temporaries of reducing and joining spent as much
    time in the kernel as in numpy (benchmarks/run.py flowlogs). Plain pages
    while reading records; numpy's setting restored after."""
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _set_madvise_hugepage
    before = _set_madvise_hugepage(False)
    try:
        yield
    finally:
        _set_madvise_hugepage(before)


@_small_pages()
def read_file(file_id: int, path: str, fmt: str | None) -> tuple[dict, Flows | None, object, dict]:
    """One file: its reduced directed records (or ready-made flows), its
    CaptureInfo, and what the notices sum up over files. The unit of parallel work."""
    name = fmt or detect(path)
    if name is None:
        raise CaptureError("not a flow log of a known format", file=path, hint=HINT)
    out = FileRead(file_id, path, gzip=is_gzip(path))
    try:
        FORMATS[name].read(file_id, path, out)
    except UnicodeDecodeError:
        raise CaptureError("not text (UTF-8)", file=path, hint=HINT) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # readers that gunzip as they go
        raise CaptureError(
            f"the gzip data is damaged or cut short ({exc})",
            file=path,
            hint="check the file (gzip -t); a file cut short can be read up to the cut "
            "with zcat FILE > FILE.txt",
        ) from None
    except OSError as exc:
        raise CaptureError(f"cannot read: {exc.strerror or exc}", file=path) from None
    info = out.own_info or out.info()
    summary = {
        "format": name,
        "nodata": out.nodata,
        "skipdata": out.skipdata,
        "no_flags": out.tcp and not out.flags_known and name == "aws",
    }
    return out.reduced(), out.flows, info, summary


class _Pending:
    """The reduced records of the files read so far, merged (reduced again) once
    they pass FOLD rows and twice what the last merge left: memory grows with
    flows, not with records, and a merge that leaves many rows (many flows) is
    not repeated for every file after it.

    The end needs no last merge: `join` merges whatever is left, and reducing
    rows that files do not share (an hour's file each; most connections are
    shorter) only sorted them once more (a quarter of the reading time)."""

    def __init__(self) -> None:
        self.parts: list[dict] = []
        self.rows = 0
        self.fold_at = FOLD

    def add(self, cols: dict) -> None:
        self.parts.append(cols)
        self.rows += len(cols["proto"])
        if len(self.parts) > 1 and self.rows > self.fold_at:
            self.parts = [reduce(_drained(self.parts))]
            self.rows = len(self.parts[0]["proto"])
            self.fold_at = max(FOLD, 2 * self.rows)

    def table(self) -> dict:
        """Everything together; the parts are let go as they join."""
        parts, self.parts = self.parts, []
        return _drained(parts)


def _drained(parts: list[dict]) -> dict:
    """The parts as one, the list emptied: only the one copy stays alive."""
    joined = concat(parts)
    parts.clear()
    return joined


def read_records(
    paths: list[str],
    fmt: str | None = None,
    jobs: int = 1,
    on_batch: Callable[[int, int], None] | None = None,
) -> Traffic:
    """Flow-record files into one Traffic, as the check reads a capture's."""
    with _small_pages():
        return _read_records(paths, fmt, jobs, on_batch)


def _read_records(paths, fmt, jobs, on_batch) -> Traffic:
    from portmatrix.sources.workers import processes

    ids = list(range(len(paths)))
    if (workers := processes(paths, jobs)) > 1:
        parts = _in_processes(workers, ids, paths, fmt)
    else:
        parts = (read_file(i, p, fmt) for i, p in zip(ids, paths, strict=True))
    pending, ready, infos, summaries = _Pending(), [], [], []
    for records, flows, info, summary in parts:
        if on_batch:
            on_batch(info.size or 0, info.frames)
        pending.add(records)
        if flows is not None:
            ready.append(flows)
        infos.append(info)
        summaries.append(summary)
    flows = _concat_flows([join(pending.table()), *ready])
    traffic = Traffic(flows=flows, counts=DecodeCounts(), captures=infos)
    traffic.remarks += remarks(summaries)
    return traffic


def _in_processes(workers: int, ids, paths, fmt):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield from pool.map(read_file, ids, paths, [fmt] * len(paths))


def _concat_flows(parts: list[Flows]) -> Flows:
    parts = [p for p in parts if len(p)]
    if not parts:
        return Flows.from_columns({"proto": np.zeros(0, np.int64)})
    if len(parts) == 1:
        return parts[0]
    flows = Flows({k: np.concatenate([p[k] for p in parts]) for k in FLOW_COLUMNS})
    return flows.take(np.lexsort((flows["file0"], flows["first_ts"])))


def remarks(summaries: list[dict]) -> list[str]:
    """What the sources cannot know and where they had gaps: one sentence each."""
    out = []
    used = {s["format"] for s in summaries}
    out += [FORMATS[name].remark for name in FORMATS if name in used and FORMATS[name].remark]
    no_flags = sum(s["no_flags"] for s in summaries)
    if no_flags:
        out.append(
            f"{no_flags} AWS flow log file(s) have no tcp-flags field: TCP initiators are "
            "guessed from the ports, and a refused connection cannot be told from an "
            "unanswered one — add tcp-flags to the flow log format (version 3)"
        )
    nodata = sum(s["nodata"] for s in summaries)
    if nodata:
        out.append(
            f"{nodata} NODATA record(s): an interface had no traffic in a window "
            "(not flows; counted)"
        )
    skipdata = sum(s["skipdata"] for s in summaries)
    if skipdata:
        out.append(
            f"{skipdata} SKIPDATA record(s): AWS skipped records in those windows, so traffic "
            "is missing from the log and a service that looks missing may just not be logged"
        )
    return out
