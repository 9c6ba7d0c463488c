"""The inputs a command was given: files, folders and globs expanded in a stable
order, and their total size (the progress bar's total)."""

from __future__ import annotations

import contextlib
import os
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


def expand_inputs(items: list[str] | tuple[str, ...]) -> list[str]:
    """Files from paths, directories (their capture files) and globs, in a stable order."""
    out: list[str] = []
    for item in items:
        path = Path(item)
        if item == "-" or path.is_file():
            out.append(item)
        elif path.is_dir():
            found = sorted(
                str(p) for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
            )
            if not found:
                raise CaptureError("directory holds no files", file=item)
            out += found
        elif any(ch in item for ch in "*?["):
            base, pattern = (Path("/"), item[1:]) if path.is_absolute() else (Path(), item)
            # Hidden files are left out, as for a directory.
            found = sorted(
                str(p) for p in base.glob(pattern) if p.is_file() and not p.name.startswith(".")
            )
            if not found:
                raise CaptureError("no file matches this pattern", file=item)
            out += found
        else:
            raise CaptureError("no such file", file=item, hint="check the path")
    return out
