"""The inputs a command was given: files, folders and globs expanded in a stable
order, and their total size (the progress bar's total)."""

from __future__ import annotations

import contextlib
import gzip
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from portmatrix.errors import CaptureError


def total_size(paths: list[str]) -> int:
    """Bytes of the input files on disk (0 for standard input): the progress total."""
    total = 0
    for path in paths:
        if path != "-":
            with contextlib.suppress(OSError):
                total += os.path.getsize(path)
    return total


CAPTURE_MAGICS = (
    b"\xd4\xc3\xb2\xa1",  # pcap, µs, little-endian
    b"\xa1\xb2\xc3\xd4",  # pcap, µs, big-endian
    b"\x4d\x3c\xb2\xa1",  # pcap, ns, little-endian
    b"\xa1\xb2\x3c\x4d",  # pcap, ns, big-endian
    b"\x0a\x0d\x0d\x0a",  # pcapng section header
)


class Inputs(list):
    """The files to read, in order; the files a folder or glob held that are not
    captures (`skipped`: a README, notes, an evidence sidecar); and the evidence
    extracts it held (`extracts`: pcapng files `portmatrix evidence` wrote, whose
    packets are already in the captures beside them — read, they would count twice)."""

    skipped: list[str]
    extracts: list[str]
    noun: str = "capture"  # what the kept files are, for the notice about the others


def is_evidence_extract(path: str | Path) -> bool:
    """Is `path` a pcapng `portmatrix evidence` wrote (its sidecar says so)?"""
    sidecar = Path(f"{path}.json")
    try:
        with open(sidecar, encoding="utf-8") as fh:
            head = fh.read(4096)
    except (OSError, UnicodeDecodeError):
        return False
    return '"evidence":' in head and '"sources":' in head


def is_capture(path: str | Path) -> bool:
    """Does the file start as a capture does (pcap, pcapng, either gzip-compressed)?"""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            if head[:2] == b"\x1f\x8b":
                fh.seek(0)
                with gzip.open(fh) as inner:
                    head = inner.read(4)
    except (OSError, EOFError, zlib.error):
        return False
    return head in CAPTURE_MAGICS


@dataclass(frozen=True)
class InputKind:
    """What a folder or glob keeps of the files it holds, told by their content."""

    noun: str  # "capture", "flow log"
    keep: Callable[[str], bool]
    hint: str
    recursive: bool = False  # walk sub-folders too (flow logs in S3's dated layouts)


CAPTURES = InputKind("capture", is_capture, "give pcap or pcapng files (or .gz of them)")


def _listed(path: Path, recursive: bool) -> list[str]:
    """The files of a folder, sorted; hidden files and folders left out."""
    found = path.rglob("*") if recursive else path.iterdir()
    return sorted(
        str(p)
        for p in found
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )


def expand_inputs(
    items: list[str] | tuple[str, ...], captures: bool = True, *, kind: InputKind | None = None
) -> Inputs:
    """Files from paths, folders and globs, in a stable order.

    A file named explicitly is read whatever it holds (and is an error if it is
    not what the command reads); files found in a folder or by a glob are taken
    only when they are of the `kind` (captures by default; every file when
    `captures` is False), the others listed in `Inputs.skipped`. Hidden files
    are left out of folders and globs.
    """
    kind = kind or (CAPTURES if captures else None)
    out = Inputs()
    out.skipped, out.extracts = [], []
    out.noun = kind.noun if kind else "file"
    for item in items:
        path = Path(item)
        if item == "-" and _stdin_is_a_terminal():
            raise CaptureError(
                "standard input is a terminal, not a capture",
                file="-",
                hint="pipe a capture into it (tcpdump -w - ... | portmatrix check - ...)",
            )
        if item == "-" or (path.exists() and not path.is_dir()):  # a file, a FIFO, a device
            out.append(item)
            continue
        if path.is_dir():
            found = _listed(path, bool(kind and kind.recursive))
            if not found:
                raise CaptureError("folder holds no files", file=item)
        elif any(ch in item for ch in "*?["):
            base, pattern = (Path("/"), item[1:]) if path.is_absolute() else (Path(), item)
            found = sorted(
                str(p) for p in base.glob(pattern) if p.is_file() and not p.name.startswith(".")
            )
            if not found:
                raise CaptureError("no file matches this pattern", file=item)
        else:
            raise CaptureError("no such file", file=item, hint="check the path")
        kept = [f for f in found if kind.keep(f)] if kind else found
        extracts = [f for f in kept if is_evidence_extract(f)] if kind is CAPTURES else []
        out.extracts += extracts
        kept = [f for f in kept if f not in set(extracts)]
        if not kept:
            raise CaptureError(
                f"no {kind.noun} among its {len(found)} file(s)", file=item, hint=kind.hint
            )
        out += kept
        out.skipped += [f for f in found if f not in set(kept) and f not in set(extracts)]
    return out


def _stdin_is_a_terminal() -> bool:
    import sys

    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def skipped_notice(inputs: list[str]) -> str:
    """One sentence listing the files that were left out, and why, or ""."""
    parts = []
    noun = getattr(inputs, "noun", "capture")
    for files, why in (
        (getattr(inputs, "skipped", []), f"are not {noun}s"),
        (getattr(inputs, "extracts", []), "are evidence extracts of the captures beside them"),
    ):
        if files:
            shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
            parts.append(f"{len(files)} file(s) {why}: {shown}")
    if not parts:
        return ""
    return "skipped in the folders given: " + "; ".join(parts)
