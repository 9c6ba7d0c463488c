"""One capture input: a file (pcap, pcapng, gzip-compressed), `-` for standard
input, or a live stream, read as batches of raw packets."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

from portmatrix.decode.batch import RawBatch
from portmatrix.errors import CaptureError
from portmatrix.sources.base import CaptureInfo
from portmatrix.sources.digest import HashingReader
from portmatrix.sources.gunzip import Gunzip
from portmatrix.sources.gunzip import errors as inflate_errors
from portmatrix.sources.pcap import MAGICS as PCAP_MAGICS
from portmatrix.sources.pcap import PcapReader
from portmatrix.sources.pcapng import PcapngReader

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"


class Capture:
    """One capture input; iterate `batches()`, then read `info`."""

    def __init__(self, path: str, stream=None, digest: bool = True) -> None:
        """`path` names the input; `stream`, when given, is a live byte stream (a
        capture process's pipe) read as soon as bytes arrive, not a chunk at a time.
        `digest` False: no SHA-256 (a second read of a file whose digest is known)."""
        self.path = path
        self.info = CaptureInfo(path=path)
        live = stream is not None
        if live:
            raw = stream
        elif path == "-":
            raw = sys.stdin.buffer
        else:
            try:
                raw = open(path, "rb")  # noqa: SIM115 - closed in batches()
                self.info.size = os.fstat(raw.fileno()).st_size
            except FileNotFoundError:
                raise CaptureError("no such file", file=path, hint="check the path") from None
            except IsADirectoryError:
                raise CaptureError(
                    "is a directory", file=path, hint="give capture files (or a glob)"
                ) from None
            except OSError as exc:
                raise CaptureError(f"cannot open: {exc.strerror}", file=path) from None
        self._hashing = HashingReader(raw, enabled=digest and not live)
        try:
            self._open_reader(path, live)
        except BaseException:
            # A rejected input leaves no thread or file descriptor behind.
            if path != "-":
                self._hashing.close()
            raise

    def _open_reader(self, path: str, live: bool) -> None:
        """Tell the format from the first bytes and set up its reader."""
        stream = self._hashing
        head = _read_head(stream) if live else _read_exactly(stream, 4096)
        compressed = head[:2] == GZIP_MAGIC
        if compressed:
            stream = _Prepend(head, self._hashing)
            stream = _Guarded(Gunzip(stream), path)
            head = stream.read(4096)
            if stream.error is not None and not head:
                raise CaptureError(
                    f"damaged gzip data: {stream.error.what}",
                    file=path,
                    hint="check the file was copied completely",
                )
            self._stream = stream
        else:
            self._stream = _Guarded(stream, path)
        magic = head[:4]
        ahead = compressed or path == "-"  # inflating or waiting on a pipe: overlap it
        if magic in PCAP_MAGICS:
            self.reader = PcapReader(self._stream, self.info, head, ahead)
        elif magic == PCAPNG_MAGIC:
            self.reader = PcapngReader(self._stream, self.info, head, ahead)
        else:
            what = "empty" if not head else "not a pcap or pcapng capture"
            raise CaptureError(
                f"{what} (starts with {head[:4].hex() or 'nothing'})",
                file=path,
                where="byte 0",
                hint="give a .pcap, .pcapng or .gz of one (e.g. from tcpdump -w)",
            )
        self.reader.chunks.live = live
        if compressed:
            self.info.format += "+gzip"

    def reuse_buffers(self) -> None:
        """The caller is done with each batch (its `data` too) before asking for the
        next: the reader then reads into the same few blocks again."""
        if not self.info.format.endswith("+gzip") and self.path != "-":
            self.reader.chunks.settle = self._hashing.settle

    @property
    def bytes_read(self) -> int:
        """Bytes of the file (as stored, compressed or not) read so far: progress."""
        return self._hashing.count

    def batches(self) -> Iterator[RawBatch]:
        ended = False  # read to its end, or to damage: not interrupted
        try:
            yield from self.reader.batches()
            damage = self._stream.error
            if damage is not None:
                # The reader took the damage for the end of the file: say why it ended.
                self.info.truncated = f"{damage.what}: " + (
                    self.info.truncated
                    or f"stopped after record {self.info.frames} at byte "
                    f"{self.reader.file_pos}; analyzed up to there"
                )
            ended = True
        except CaptureError as exc:
            # Damage past the header: keep what was read and say where it stopped.
            where = f" at {exc.where}" if exc.where else ""
            self.info.truncated = f"{exc.what}{where}; analyzed up to there"
            ended = True
        finally:
            self.reader.chunks.close()  # no more reads behind our back
            self.info.bytes_read = self.reader.file_pos
            if ended:  # the digest is of the whole file, even if damage stopped the read
                self.info.sha256 = self._hashing.hexdigest()
            # Interrupted (Ctrl-C, a consumer that stopped): no reading the rest of a
            # stream that may never end; the thread stops, the file closes.
            self._hashing.stop()
            if self.path != "-":
                self._hashing.close()


class _Prepend:
    """A stream that first returns bytes already read while sniffing the format."""

    def __init__(self, head: bytes, rest) -> None:
        self.head = head
        self.rest = rest

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n < 0 or n >= len(self.head):
                out, self.head = self.head, b""
                return out + (self.rest.read(n - len(out)) if n > len(out) else b"")
            out, self.head = self.head[:n], self.head[n:]
            return out
        return self.rest.read(n)


class _Guarded:
    """Turns decompression failures in the middle of a file into an early end of
    stream, remembered in `error` (a CaptureError) for the report.

    What decompressed before the damage is returned first, so a cut .gz is
    analyzed up to the cut; `read1` does not lose data already decompressed
    when a read fails.
    """

    def __init__(self, stream, path: str) -> None:
        self.stream = stream
        self.path = path
        self.error: CaptureError | None = None
        self._read1 = getattr(stream, "read1", stream.read)

    def readinto1(self, buf) -> int:
        return self.stream.readinto1(buf)

    def fileno(self) -> int:
        return self.stream.fileno()

    def readinto(self, buf) -> int:
        """Fill `buf` as far as the stream goes: straight from a plain file, through
        `read` for compressed data (so bytes before damage are not lost)."""
        if not isinstance(self.stream, Gunzip):
            return self.stream.readinto(buf) or 0
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def read(self, n: int) -> bytes:
        if self.error is not None:
            return b""
        parts = []
        try:
            while n > 0:
                data = self._read1(n)
                if not data:
                    break
                parts.append(data)
                n -= len(data)
        except EOFError:
            self.error = CaptureError("compressed stream ends early", file=self.path)
        except (OSError, *inflate_errors()) as exc:  # (looked up only on a failure)
            self.error = CaptureError(f"damaged compressed data ({exc})", file=self.path)
        return b"".join(parts)


def _read_head(stream) -> bytes:
    """The first bytes of a live stream: enough to tell the format, without waiting
    for more (a quiet interface may send nothing else for a while)."""
    head = b""
    while len(head) < 32:
        data = stream.read1(4096) if hasattr(stream, "read1") else stream.read(32 - len(head))
        if not data:
            break
        head += data
    return head


def _read_exactly(stream, n: int) -> bytes:
    """Up to n bytes, fewer only at the end of the stream (pipes return short reads)."""
    parts = []
    while n > 0:
        data = stream.read(n)
        if not data:
            break
        parts.append(data)
        n -= len(data)
    return b"".join(parts) if len(parts) != 1 else parts[0]
