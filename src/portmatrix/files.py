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
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from portmatrix.errors import PortmatrixError


def check_writable(path: str, option: str, inputs: Iterable[str] = ()) -> None:
    """Raise a one-line error unless `path` can be written (created or replaced)."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
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
    for item in inputs:
        same_name = os.path.abspath(item) == os.path.abspath(path)
        if item != "-" and (same_name or _same_file(target, Path(item))):
            raise PortmatrixError(
                "is one of the inputs: writing it would destroy it",
                file=path,
                where=option,
                hint="write the output to another file",
            )


def read_files(*groups) -> list[str]:
    """Every file a command reads (captures, matrices, inventory), for
    `check_writable`'s `inputs`: None and missing groups left out."""
    return [
        str(item)
        for group in groups
        if group
        for item in ([group] if isinstance(group, str) else group)
    ]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


@contextlib.contextmanager
def atomic(path: str, mode: str = "w") -> Iterator:
    """A file object whose content replaces `path` only when the block ends
    without an error (or an interrupt): then it is renamed into place."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent or ".")
    try:
        kwargs = {"encoding": "utf-8", "newline": ""} if "b" not in mode else {}
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # as open() would have created it
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path: str, text: str, option: str = "--output") -> None:
    """`text` into `path`, atomically; an OS failure is a one-line error."""
    try:
        with atomic(path) as fh:
            fh.write(text)
    except OSError as exc:
        raise PortmatrixError(
            f"cannot write: {exc.strerror or exc}", file=path, where=option
        ) from None
