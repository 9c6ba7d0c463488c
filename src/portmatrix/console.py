"""The terminal: where lines go, whether to colour them, how wide they may be.

Colour follows no-color.org and its FORCE_COLOR counterpart: NO_COLOR set
(to anything) means none, FORCE_COLOR set means colour even when piped;
otherwise colour on a terminal only. Light (no rich, no numpy).
"""

from __future__ import annotations

import os
import shutil
import sys


def use_color(stream=None) -> bool:
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR", "0") not in ("", "0"):
        return True
    return _isatty(stream)


def width(stream=None) -> int:
    """Columns of the terminal `stream` is on; 80 when it is not a terminal."""
    if not _isatty(stream or sys.stdout):
        return 80
    return shutil.get_terminal_size().columns


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed, or not a real stream
        return False


def say(line: str) -> None:
    """One line on standard error: what portmatrix tells the person running it
    (file names and reasons in it may hold control characters: shown escaped)."""
    from portmatrix.report.escape import visible

    print(visible(line), file=sys.stderr, flush=True)


def out(text: str) -> None:
    """Text on standard output, as given (no newline added)."""
    sys.stdout.write(text)
    sys.stdout.flush()
