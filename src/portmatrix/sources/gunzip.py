"""Gzip members, one after another, inflated as a stream: what `.gz` captures are
read through.

Inflating is Intel's ISA-L (`isal`), about 2.5 times as fast as zlib's, or zlib
where it is not installed; both check each member's CRC and length. This is
`gzip.GzipFile`'s reading without its buffering: `isal`'s own GzipFile returns
its output in 128 kB pieces and loses the last, partial one when a file is cut
short, where a damaged capture must be analyzed up to the damage. Cut short,
the stream returns what inflated before the cut (at most a byte less than
zlib gives), then raises EOFError. Like GzipFile, it skips zero padding between
members and refuses anything else after one (gzip.BadGzipFile).
"""

from __future__ import annotations

import gzip
import zlib

MAGIC = b"\x1f\x8b"
INPUT = 1 << 20  # compressed bytes read at a time
OUTPUT = 1 << 17  # bytes a read1() without a size returns at most


def inflater():
    """The module whose decompressobj inflates: isal's, else zlib."""
    try:
        from isal import isal_zlib
    except ImportError:
        return zlib
    return isal_zlib


def errors() -> tuple[type[Exception], ...]:
    """What inflating damaged data raises, besides OSError and EOFError."""
    module = inflater()
    return (zlib.error,) if module is zlib else (zlib.error, module.error)


class Gunzip:
    """A readable binary stream of the data inside the gzip stream `raw`."""

    def __init__(self, raw, module=None) -> None:
        self.raw = raw
        self.module = module or inflater()
        self.inflate = self.module.decompressobj(31)  # 31: a gzip header and trailer
        self.tail = b""  # compressed input the inflater has not taken yet
        self.started = False  # the current member has had input

    def read1(self, n: int = -1) -> bytes:
        """Some of the data (at most `n` bytes); b"" at the end."""
        n = n if n and n > 0 else OUTPUT
        while True:
            if self.inflate.eof:
                # At the end of a member, what follows is in unused_data (zlib may
                # leave it in unconsumed_tail as well: it is taken once).
                rest, self.tail = self.inflate.unused_data or self.tail, b""
                if not self._next_member(rest):
                    return b""
            if not self.tail:
                self.tail = self.raw.read(INPUT)
                if not self.tail:
                    if not self.started:
                        return b""
                    if out := self.inflate.flush():  # what it holds of a cut member
                        return out
                    raise EOFError("compressed stream ends early")
            self.started = True
            out = self.inflate.decompress(self.tail, n)
            self.tail = self.inflate.unconsumed_tail
            if out:
                return out

    def _next_member(self, rest: bytes) -> bool:
        """After a member: start the next one, past zero padding; False at the end."""
        while not (rest := rest.lstrip(b"\0")):
            rest = self.raw.read(INPUT)
            if not rest:
                return False
        if len(rest) < len(MAGIC):
            rest += self.raw.read(len(MAGIC) - len(rest))
        if rest[: len(MAGIC)] != MAGIC:
            raise gzip.BadGzipFile(
                f"bytes after the end of the gzip data that are no gzip (from {rest[:8]!r})"
            )
        self.inflate = self.module.decompressobj(31)
        self.tail, self.started = rest, False
        return True

    def read(self, n: int = -1) -> bytes:
        """`n` bytes (all that is left when n < 0), fewer only at the end."""
        parts = []
        while (n < 0 or n > 0) and (data := self.read1(n if n > 0 else OUTPUT)):
            parts.append(data)
            n -= len(data) if n > 0 else 0
        return b"".join(parts)
