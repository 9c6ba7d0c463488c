"""The installed console script, run as a person runs it: in a pseudo-terminal.

click's CliRunner is never a terminal, so width, colour, the progress bar and
Ctrl-C are only exercised here: `run_in_pty` starts `portmatrix` with a
pseudo-terminal (80 columns unless told) as its stdin, stdout and stderr, and
returns everything it wrote and its exit status.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from support.paths import REPO

PORTMATRIX = Path(sys.executable).parent / "portmatrix"  # the installed console script
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


@dataclass
class Run:
    output: str  # what the terminal received, escape sequences included
    status: int

    @property
    def text(self) -> str:
        """The output as a person reads it: escape sequences and carriage returns removed."""
        return ANSI.sub("", self.output)


def _as_typed_at() -> None:
    """In the child: the pty becomes its controlling terminal, and Ctrl-C does what
    it does at a person's terminal. A test run started in the background (`cmd &`
    in a script) inherits SIGINT ignored, which Python then keeps ignoring."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_in_pty(
    *args: str,
    columns: int = 80,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    cwd: Path = REPO,
    on_output: Callable[[str, Callable[[bytes], None]], None] | None = None,
    idle: Callable[[Callable[[bytes], None]], None] | None = None,
) -> Run:
    """`portmatrix ARGS` on a terminal `columns` wide. `on_output(text so far,
    type)` is called as output arrives and `idle(type)` while none does;
    `type(keys)` types on the terminal's keyboard (to press Ctrl-C half way)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    environ.update({"TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": "40"})
    environ.update(env or {})
    proc = subprocess.Popen(
        [str(PORTMATRIX), *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        env=environ,
        start_new_session=True,  # its own session: the pty is its controlling terminal
        preexec_fn=_as_typed_at,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(b"".join(chunks).decode(errors="replace")[-2000:])
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the terminal's other side has closed
                    data = b""
                if not data:
                    break
                chunks.append(data)
                if on_output:
                    on_output(
                        b"".join(chunks).decode(errors="replace"), lambda k: os.write(master, k)
                    )
            elif proc.poll() is not None and not _pending(master):
                break
            elif idle:
                idle(lambda k: os.write(master, k))
        status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    return Run(b"".join(chunks).decode(errors="replace"), status)


def _pending(fd: int) -> bool:
    ready, _, _ = select.select([fd], [], [], 0)
    return bool(ready)


def ctrl_c_after(marker: str) -> Callable[[str, Callable[[bytes], None]], None]:
    """An `on_output` that presses Ctrl-C once `marker` has appeared: the terminal
    sends SIGINT to its foreground process group, as for a person."""
    sent = False

    def press(text: str, type_keys: Callable[[bytes], None]) -> None:
        nonlocal sent
        if not sent and marker in ANSI.sub("", text):
            sent = True
            type_keys(b"\x03")

    return press
