"""Output files: checked before any input is read, and written whole or not at all.

Every file portmatrix writes (reports, flow exports, evidence and its
sidecar, watch's JSON lines and report) is checked up front — its folder
exists and is writable, it is not a folder, it is not one of the inputs — so
a long read never ends in "cannot write". Reports are written to a temporary
file beside the target and renamed into place when complete: a run killed
half way leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from portmatrix.errors import PortmatrixError


def check_writable(path: str, option: str, inputs: Iterable[str] = ()) -> None:
    """Raise a one-line error unless `path` can be written (created or replaced)."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    for item in inputs:
        if item != "-" and _same_file(target, Path(item)):
            raise PortmatrixError(
                "is one of the inputs: writing it would destroy it",
                file=path,
                where=option,
                hint="write the output to another file",
            )
    if _in_place(target):  # /dev/null, a FIFO: written in place, never replaced
        if not os.access(target, os.W_OK):
            raise PortmatrixError("no permission to write here", file=path, where=option)
        return
    if target.is_dir():
        raise PortmatrixError(
            "is a folder", file=path, where=option, hint="give a file name inside it"
        )
    if not folder.is_dir():
        raise PortmatrixError(
            f"the folder {folder} does not exist",
            file=path,
            where=option,
            hint=f"create it first (mkdir -p {folder})",
        )
    if not os.access(folder, os.W_OK | os.X_OK) or (
        target.exists() and not os.access(target, os.W_OK)
    ):
        raise PortmatrixError(
            "no permission to write here",
            file=path,
            where=option,
            hint="choose a folder you can write to",
        )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


class Staged:
    """Outputs written to temporary files beside their targets, put in place
    together by `commit` — so a run interrupted before then leaves every old file
    as it was and no new one, never some of each.

    A target that is not a plain file of its own (a device such as /dev/null, a
    FIFO, a file with other hard links) is written in place at commit, never
    replaced; a symbolic link is followed; a replaced file keeps its mode.

    `durable`: each file is flushed to disk before it is put in place, and its
    folder after the rename — for a file that must survive a power cut, not only
    an interrupted run (watch's state, read again when the service restarts).
    """

    def __init__(self, durable: bool = False) -> None:
        self.durable = durable
        self._pending: list[tuple[str, Path, str]] = []  # (temporary, target, option)

    @contextlib.contextmanager
    def open(self, path: str, mode: str = "w", option: str = "--output") -> Iterator:
        target = Path(os.path.realpath(path))
        # Beside the target, so the rename is atomic; a target written in place (a
        # device, a FIFO) may sit in a folder we cannot write: its copy waits elsewhere.
        folder = target.parent if not _in_place(target) else None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
        except OSError as exc:
            raise PortmatrixError(
                f"cannot write: {exc.strerror or exc}", file=path, where=option
            ) from None
        self._pending.append((tmp, target, option))
        kwargs = {"encoding": "utf-8", "newline": ""} if "b" not in mode else {}
        try:
            with os.fdopen(fd, mode, **kwargs) as fh:
                yield fh
                if self.durable:
                    fh.flush()
                    os.fsync(fh.fileno())
        except OSError as exc:
            raise PortmatrixError(
                f"cannot write: {exc.strerror or exc}", file=path, where=option
            ) from None

    def write_text(self, path: str, text: str, option: str = "--output") -> None:
        with self.open(path, option=option) as fh:
            fh.write(text)

    def commit(self) -> None:
        for tmp, target, option in self._pending:
            try:
                _put_in_place(tmp, target)
                if self.durable:
                    _sync_folder(target.parent)
            except OSError as exc:
                raise PortmatrixError(
                    f"cannot write: {exc.strerror or exc}", file=str(target), where=option
                ) from None
        self._pending = []

    def discard(self) -> None:
        for tmp, _, _ in self._pending:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._pending = []


def _in_place(target: Path) -> bool:
    """Is `target` written in place rather than replaced: a device, a FIFO, a
    socket, or a file with other hard links?"""
    try:
        info = target.stat()
    except OSError:
        return False
    if stat.S_ISDIR(info.st_mode):
        return False
    return not stat.S_ISREG(info.st_mode) or info.st_nlink > 1


def _put_in_place(tmp: str, target: Path) -> None:
    try:
        info = target.stat()
    except FileNotFoundError:
        info = None
    if info is not None and _in_place(target):
        with open(tmp, "rb") as src, open(target, "wb") as dst:  # in place, not replaced
            shutil.copyfileobj(src, dst, 1 << 20)
        os.unlink(tmp)
        return
    if info is not None:
        os.chmod(tmp, stat.S_IMODE(info.st_mode))
    else:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # as open() would have created it
    os.replace(tmp, target)


def _sync_folder(folder: Path) -> None:
    """The folder's entries (a rename into it) on disk; a file system that cannot
    sync a folder (some network ones) is left to its own schedule."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def staged(durable: bool = False) -> Iterator[Staged]:
    """Outputs that appear together when the block ends without an error or an
    interrupt, and not at all otherwise (`durable`: see Staged)."""
    batch = Staged(durable)
    try:
        yield batch
        batch.commit()
    finally:
        batch.discard()


@contextlib.contextmanager
def atomic(path: str, mode: str = "w", option: str = "--output") -> Iterator:
    """One output file, in place when the block ends without an error (see Staged)."""
    with staged() as batch, batch.open(path, mode, option) as fh:
        yield fh


def write_text(path: str, text: str, option: str = "--output") -> None:
    """`text` into `path`, atomically; an OS failure is a one-line error."""
    with staged() as batch:
        batch.write_text(path, text, option)
