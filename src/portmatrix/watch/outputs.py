"""Where a running watch tells what happens: the terminal (or journal), a text
log, the JSON lines file, syslog, the metrics — every line stamped with the
time it was made (ISO 8601, UTC).

The files are appended to and flushed line by line, and reopened on SIGHUP
(`reopen`), so logrotate can move them away (its default `create` mode, then a
HUP): lines written before the HUP land in the moved file, lines after it in
the new one, none is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from portmatrix.errors import PortmatrixError
from portmatrix.report.escape import json_line
from portmatrix.times import stamp


class LineFile:
    """A file appended to a line at a time, reopened on request (log rotation)."""

    def __init__(self, path: str, option: str) -> None:
        self.path = path
        self.option = option
        self.lines = 0
        self._fh = self._open()

    def _open(self):
        try:
            return open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            raise PortmatrixError(
                f"cannot open: {exc.strerror}", file=self.path, where=self.option
            ) from None

    def write(self, line: str) -> None:
        self._fh.write(line + "\n")
        self._fh.flush()
        self.lines += 1

    def reopen(self) -> None:
        """Close and open the path again: a rotated file is let go, a new one made."""
        fresh = self._open()
        self._fh.close()
        self._fh = fresh

    def close(self) -> None:
        self._fh.close()


@dataclass
class Outputs:
    """Where a running watch reports, all opened (and closed) by its owner,
    `watch.service`. `say` prints a line on the terminal; the rest are optional."""

    say: Callable[[str], None]
    log: LineFile | None = None  # --log: the live lines, as on the terminal
    jsonl: LineFile | None = None  # --jsonl: one ECS object per event
    syslog: object | None = None  # --syslog: watch.syslog.Syslog
    metrics: object | None = None  # watch.metrics.Metrics
    ifaces: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # failures to write, said once each
    # The final report goes to the terminal: what the end settles is said there, so
    # its events are not printed just before it (they still go everywhere else).
    report_shown: bool = False

    def line(self, text: str, terminal: bool = True) -> None:
        """A live line: stamped, on the terminal and in the log."""
        text = f"{stamp()} {text}"
        if terminal:
            self.say(text)
        if self.log:
            self._guard(self.log.write, text, "--log")

    def event(self, event, ruleset: str, when: str | None, final: bool = False) -> None:
        """A finding to announce, everywhere it goes (`final`: one the end settled)."""
        from portmatrix.report.formats import ecs_finding, observer
        from portmatrix.watch.lines import event_line

        self.line(event_line(event), terminal=not (final and self.report_shown))
        record = None
        if self.jsonl or self.syslog:
            record = ecs_finding(
                event.finding.to_dict(),
                ruleset,
                when=when,
                created=stamp(),
                observer=observer(self.ifaces),
            )
            record["event"]["reason"] = event.kind
            if event.kind == "recovered":
                record["event"]["kind"], record["event"]["type"] = "event", ["end"]
        if self.jsonl:
            self._guard(self.jsonl.write, json_line(record), "--jsonl")
        if self.syslog:
            self._guard(self.syslog.send, record, "--syslog")
        if self.metrics:
            self.metrics.announced(event)

    def reopen(self) -> None:
        for out, option in ((self.log, "--log"), (self.jsonl, "--jsonl")):
            if out:
                self._guard(out.reopen, None, option)

    def _guard(self, write, arg, option: str) -> None:
        """A full disk or a gone syslog server is said once, and watching goes on."""
        try:
            write() if arg is None else write(arg)
        except (OSError, PortmatrixError) as exc:
            problem = f"{option}: {getattr(exc, 'strerror', None) or exc}"
            if problem not in self.problems:
                self.problems.append(problem)
                self.say(f"{stamp()} portmatrix: warning: cannot write to {problem}")
