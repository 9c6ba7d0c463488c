"""The gzip stream captures are read through, with ISA-L's inflate and with zlib's:
the same data as the standard library's gzip on whole files (several members,
zero padding), the data before the cut on cut files, and the standard library's
errors on damaged ones."""

from __future__ import annotations

import gzip
import io
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portmatrix.sources import gunzip
from portmatrix.sources.gunzip import Gunzip

MODULES = [zlib]
try:
    from isal import isal_zlib

    MODULES.append(isal_zlib)
except ImportError:  # isal is a dependency: CI has it
    pass

modules = pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
SIZES = st.sampled_from([1, 7, 100, 4096, 65536, 1 << 20])


def members():
    """Payloads compressible and not, and the zero padding after each member."""
    piece = st.binary(max_size=300).flatmap(
        lambda b: st.integers(1, 400).map(lambda k: b * k)
    )  # repeats: long members in few examples
    return st.lists(st.tuples(piece, st.integers(0, 3)), min_size=1, max_size=3)


def read_all(stream: Gunzip, sizes) -> tuple[bytes, Exception | None]:
    parts = []
    try:
        while data := stream.read1(sizes.pop() if sizes else 65536):
            parts.append(data)
    except (EOFError, OSError, *gunzip.errors()) as exc:
        return b"".join(parts), exc
    return b"".join(parts), None


def test_the_fast_inflate_is_installed():
    assert gunzip.inflater() is not zlib, "isal, a dependency, is not installed"


@modules
@settings(max_examples=150, deadline=None)
@given(members(), st.lists(SIZES, max_size=50), st.data())
def test_whole_and_cut_files(module, parts, sizes, data):
    blob = b"".join(gzip.compress(p, mtime=0) + b"\0" * pad for p, pad in parts)
    want = b"".join(p for p, _ in parts)
    got, error = read_all(Gunzip(io.BytesIO(blob), module), list(sizes))
    assert (got, error) == (want, None)
    cut = data.draw(st.integers(1, len(blob) - 1))
    got, error = read_all(Gunzip(io.BytesIO(blob[:cut]), module), list(sizes))
    assert want.startswith(got)
    reference = gzip.GzipFile(fileobj=io.BytesIO(blob[:cut]))
    before, ref_error = read_all(reference, [])
    assert len(before) - 1 <= len(got) <= len(before)  # ISA-L may hold back a byte
    assert (error is None) == (ref_error is None)  # cut inside padding: no error


@modules
def test_read_gives_what_was_asked_and_the_rest(module):
    blob = gzip.compress(b"abcdef" * 1000) + gzip.compress(b"xyz")
    stream = Gunzip(io.BytesIO(blob), module)
    assert stream.read(4) == b"abcd"
    assert stream.read() == (b"abcdef" * 1000)[4:] + b"xyz"
    assert stream.read(10) == b""


@modules
def test_damage_raises_as_the_standard_library_does(module):
    good = gzip.compress(b"payload " * 500, mtime=0)
    crc = good[:-8] + bytes([good[-8] ^ 1]) + good[-7:]
    with pytest.raises(gunzip.errors()):
        Gunzip(io.BytesIO(crc), module).read()
    with pytest.raises(gzip.BadGzipFile):
        Gunzip(io.BytesIO(good + b"trailing garbage"), module).read()
    with pytest.raises(EOFError):
        Gunzip(io.BytesIO(good[:-3]), module).read()
    assert Gunzip(io.BytesIO(b""), module).read() == b""
