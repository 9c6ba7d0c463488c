"""The terminal: where lines go, whether to colour them, how wide they may be.

Colour follows no-color.org and its FORCE_COLOR counterpart: NO_COLOR set
(to anything) means none, FORCE_COLOR set means colour even when piped;
otherwise colour on a terminal only. Light (no rich, no numpy).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys


def use_color(stream=None) -> bool:
    stream = stream or sys.stdout
    if stream is None:
        return False
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR", "0") not in ("", "0"):
        return True
    return isatty(stream)


def width(stream=None) -> int:
    """Columns of the terminal `stream` is on; 80 when it is not a terminal."""
    if not isatty(stream or sys.stdout):
        return 80
    return shutil.get_terminal_size().columns


def isatty(stream) -> bool:
    if stream is None:
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed, or not a real stream
        return False


def say(line: str) -> None:
    """One line on standard error: what portmatrix tells the person running it
    (nothing, when standard error was closed). File names and reasons in it may
    hold control characters: they are shown escaped."""
    from portmatrix.report.escape import visible

    if sys.stderr is None:
        return
    with contextlib.suppress(OSError, ValueError):  # a full stderr: nowhere left to say it
        print(visible(line), file=sys.stderr, flush=True)


def out(text: str) -> None:
    """Text on standard output, as given (no newline added)."""
    from portmatrix.errors import PortmatrixError

    if sys.stdout is None:
        raise PortmatrixError(
            "standard output is closed", hint="write the report to a file with -o FILE"
        )
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except (OSError, ValueError) as exc:
        raise PortmatrixError(
            f"cannot write to standard output: {getattr(exc, 'strerror', None) or exc}",
            hint="write the report to a file with -o FILE",
        ) from None
