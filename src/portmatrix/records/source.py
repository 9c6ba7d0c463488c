"""What reading one flow-record file gives: its directed records, and what the
file said about itself (CaptureInfo), its gaps and its damaged lines.

Every reader fills a `FileRead`; nothing is dropped silently: a line that is no
record is counted and named (file and line) in the notices, and the rest of the
file is read; a file with no record at all among damaged lines is an error.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from portmatrix.errors import CaptureError
from portmatrix.records.directed import concat, empty, reduce
from portmatrix.sources.base import CaptureInfo
from portmatrix.sources.gunzip import Gunzip, errors, inflater

SHOWN = 5  # damaged lines named one by one; the rest are counted


def is_gzip(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def open_text(path: str):
    """The file's bytes, gunzipped when it is gzip."""
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def observer_id(text: str) -> int:
    """A 64-bit id for who logged a record (an ENI, a NIC), the same in every file."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def read_all(path: str) -> tuple[bytes, str]:
    """The whole (decompressed) content, and why it stops early ("" when it does
    not): a gzip file cut short or damaged gives what came before the damage, to
    its last whole line."""
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] != b"\x1f\x8b":
        return raw, ""
    # isal's inflate (ISA-L), else zlib's: AWS logs come gzipped, and inflating them
    # is a third of reading them.
    z = inflater()
    whole = z.decompressobj(31)
    try:
        data = whole.decompress(raw)
        if whole.eof and not whole.unused_data:
            return data, ""  # the usual case: one whole member, one copy
    except z.error:
        pass
    # Several members, damage or a cut: the stream captures are read through.
    stream, parts, why = Gunzip(io.BytesIO(raw), z), [], ""
    try:
        while part := stream.read1(1 << 24):
            parts.append(part)
    except EOFError:
        why = "compressed data ends early; analyzed up to there"
    except (OSError, *errors()) as exc:
        why = f"compressed data is damaged ({exc}); analyzed up to there"
    data = b"".join(parts)
    if why:
        data = data[: data.rfind(b"\n") + 1]
    return data, why


def head(path: str, size: int = 64 << 10) -> bytes:
    """Up to `size` bytes from the start of the (decompressed) content; b"" when the
    file cannot be read."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(size)
    except OSError:
        return b""
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return zlib.decompressobj(31).decompress(raw, size)
    except zlib.error:
        return b""


@dataclass
class FileRead:
    """One file's reading in progress (a reader fills it), then its result."""

    file_id: int
    path: str
    format: str = ""
    gzip: bool = False
    header: bool = False
    parts: list[dict] = field(default_factory=list)
    keeps: list = field(default_factory=list)  # per part: the rows to keep (None: all)
    flows: object = None  # ready-made Flows (Zeek)
    own_info: CaptureInfo | None = None  # a reader that describes the file itself (Zeek)
    rows: int = 0  # records taken
    nodata: int = 0  # AWS NODATA: an interface with no traffic in a window
    skipdata: int = 0  # AWS SKIPDATA: records the exporter skipped
    sampled: int = 0  # records of sampled packets (GCP): what is absent may just be unsampled
    bad: list[tuple[str, str]] = field(default_factory=list)  # (where, why), the first few
    bad_count: int = 0
    invalid_rows: list[str] = field(default_factory=list)  # rows of the wrong shape
    truncated: str = ""
    flags_known: bool = False
    tcp: bool = False
    notices: list[str] = field(default_factory=list)

    def add(self, cols: dict, rows: int, keep: np.ndarray | None = None) -> None:
        """Directed records, standing for `rows` source records; `keep` (indices)
        the ones that are records, when not all are: taken out when the records
        are reduced, which gathers the rows anyway (a copy of every column spared)."""
        if len(cols["proto"]) and (keep is None or len(keep)):
            self.parts.append(cols)
            self.keeps.append(keep)
        self.rows += rows

    def damaged(self, places, why: str) -> None:
        """Rows that are no record: counted, the first few named by their place (a
        line number, or a text such as "tuple '...'")."""
        places = list(np.asarray(places).tolist()) if not isinstance(places, list) else places
        self.bad_count += len(places)
        room = max(SHOWN - len(self.bad), 0)
        self.bad += [(f"line {p}" if isinstance(p, int) else str(p), why) for p in places[:room]]

    def cut_short(self, why: str) -> None:
        self.truncated = why

    def records(self) -> dict:
        """The file's directed records."""
        parts = [
            p if k is None else {n: v[k] for n, v in p.items()}
            for p, k in zip(self.parts, self.keeps, strict=True)
        ]
        return concat(parts) if parts else empty()

    def reduced(self) -> dict:
        """The file's directed records, reduced (directed.reduce)."""
        if len(self.parts) == 1:
            return reduce(self.parts[0], self.keeps[0])
        return reduce(self.records())

    def info(self) -> CaptureInfo:
        """What the reports say about the file."""
        info = CaptureInfo(path=self.path, format=self.format + ("+gzip" if self.gzip else ""))
        info.frames = self.rows
        info.size = Path(self.path).stat().st_size
        info.truncated = self.truncated
        info.gaps = self.skipdata + self.sampled
        with open(self.path, "rb") as fh:
            info.sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
        bad = self.bad_count + len(self.invalid_rows)
        if bad:
            named = "; ".join(f"{where}: {why}" for where, why in self.bad[:SHOWN])
            shapes = [f"“{t[:60]}”" for t in self.invalid_rows[: max(0, SHOWN - len(self.bad))]]
            named = "; ".join(x for x in (named, ", ".join(shapes)) if x)
            info.notices.append(f"{bad} line(s) are not flow records and were skipped: {named}")
        info.notices += self.notices
        return info

    def check_any(self, hint: str) -> None:
        """A file whose every line is damaged is no flow log: one error line."""
        if self.rows or not (self.bad_count or self.invalid_rows) or self.nodata or self.skipdata:
            return
        where, why = self.bad[0] if self.bad else (None, "not a flow record")
        if self.invalid_rows and not self.bad:
            why = f"“{self.invalid_rows[0][:60]}” does not have the fields the format names"
        raise CaptureError(
            f"no flow record could be read: {why}", file=self.path, where=where, hint=hint
        )
