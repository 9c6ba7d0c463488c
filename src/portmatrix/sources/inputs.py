"""The inputs a command was given: files, folders and globs expanded in a stable
order, and their total size (the progress bar's total)."""

from __future__ import annotations

import contextlib
import gzip
import os
import zlib
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


def expand_inputs(items: list[str] | tuple[str, ...], captures: bool = True) -> Inputs:
    """Files from paths, folders and globs, in a stable order.

    A file named explicitly is read whatever it holds (and is an error if it is
    no capture); files found in a folder or by a glob are taken only when they
    are captures (`captures`), the others listed in `Inputs.skipped`. Hidden
    files are left out of folders and globs.
    """
    out = Inputs()
    out.skipped, out.extracts = [], []
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
            found = sorted(
                str(p) for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
            )
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
        kept = [f for f in found if is_capture(f)] if captures else found
        extracts = [f for f in kept if is_evidence_extract(f)] if captures else []
        out.extracts += extracts
        kept = [f for f in kept if f not in set(extracts)]
        if not kept:
            raise CaptureError(
                f"no capture among its {len(found)} file(s)",
                file=item,
                hint="give pcap or pcapng files (or .gz of them)",
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
    for files, why in (
        (getattr(inputs, "skipped", []), "are not captures"),
        (getattr(inputs, "extracts", []), "are evidence extracts of the captures beside them"),
    ):
        if files:
            shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
            parts.append(f"{len(files)} file(s) {why}: {shown}")
    if not parts:
        return ""
    return "skipped in the folders given: " + "; ".join(parts)
