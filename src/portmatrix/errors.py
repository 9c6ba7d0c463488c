"""The few error types portmatrix raises, and its exit statuses.

Only the CLI turns these into messages; library code raises them with the
file, the place inside it and a hint for the fix.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit statuses of every portmatrix command (README and `--help` list them)."""

    OK = 0  # nothing at or above --fail-on
    FINDINGS = 1  # findings at or above --fail-on (or lint problems, or rules that differ)
    BAD_INPUT = 2  # bad usage, or input that cannot be analyzed
    INTERNAL = 3  # a bug: an error portmatrix did not foresee
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it); no report written


EXIT_HELP = """Exit status: 0 nothing at or above --fail-on, 1 findings, 2 bad usage or
unreadable input, 3 internal error, 130 interrupted."""
EXIT_HELP_PLAIN = """Exit status: 0 done, 2 bad usage or unreadable input, 3 internal error,
130 interrupted."""


class PortmatrixError(Exception):
    """Bad input: carries the file, the place in it, what is wrong and the fix."""

    def __init__(
        self,
        what: str,
        *,
        file: str | None = None,
        where: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(what)
        self.what = what
        self.file = file
        self.where = where
        self.hint = hint

    def __reduce__(self):
        # Keyword-only arguments: rebuild explicitly, so errors cross process pools.
        return (_rebuild, (type(self), self.what, self.file, self.where, self.hint))

    def __str__(self) -> str:
        place = ":".join(str(p) for p in (self.file, self.where) if p)
        text = f"{place}: {self.what}" if place else self.what
        return f"{text} — {self.hint}" if self.hint else text


class MatrixError(PortmatrixError):
    """A matrix or inventory file that cannot be used."""


class CaptureError(PortmatrixError):
    """A capture that cannot be read at all (not a truncated one: that is a notice)."""


class CaptureSetupError(PortmatrixError):
    """Live capture cannot start: missing interface, permission, dumpcap."""


def _rebuild(cls, what, file, where, hint):
    return cls(what, file=file, where=where, hint=hint)
