"""AWS VPC flow-log text into the reader's columns with the compiled parser
(`_awstext.c`): the fields portmatrix uses are converted, the others stepped
over, in one pass over the decompressed text. pyarrow's CSV reader (aws.py)
stays the reference and the fallback where the parser was not built; the
tests check that both give the same records, counts and damaged lines.
"""

from __future__ import annotations

import ipaddress
import sys

import numpy as np

from portmatrix.addresses import V4_MAPPED, to_int

try:
    from portmatrix.records import _awstext as compiled
except ImportError:  # built without a C compiler
    compiled = None

NUMBERS = ("srcport", "dstport", "protocol", "packets", "bytes", "start", "end", "tcp-flags")
ADDRESSES = ("srcaddr", "dstaddr", "pkt-srcaddr", "pkt-dstaddr")
ROLES = {
    **{name: k for k, name in enumerate(NUMBERS)},
    **{name: 8 + j for j, name in enumerate(ADDRESSES)},
    "interface-id": 12,
    "action": 13,
    "log-status": 14,
}
"""Header field -> what the parser makes of it (the layout is _awstext.c's)."""

COLS, V4, TEXT, ENI, LINE, OFF, BITS = 20, 8, 12, 16, 17, 18, 19
CHUNK = 1 << 20  # rows per call: bounds the output (160 bytes a row) for a large file
ABSENT, GIVEN, OTHER = 0, 1, 2
OK, NODATA, SKIPDATA = 0, 1, 2


def eni_hash(text: str) -> int:
    """The observer id both readers give an interface-id: _awstext.c's word_hash
    (eight bytes at a time, in the machine's byte order, as C reads them)."""
    data = text.encode()
    mask = 0xFFFFFFFFFFFFFFFF
    h = 0x9E3779B97F4A7C15 ^ len(data)
    whole = len(data) // 8 * 8
    for at in range(0, whole, 8):
        h = ((h ^ int.from_bytes(data[at : at + 8], sys.byteorder)) * 0xBF58476D1CE4E5B9) & mask
        h ^= h >> 31
    tail = int.from_bytes(data[whole:].ljust(8, b"\0"), sys.byteorder)
    h = ((h ^ tail) * 0x94D049BB133111EB) & mask
    return h ^ (h >> 29)


def chunks(data: bytes, names: list[str], start: int, line: int):
    """The columns (see `columns`) of each chunk of rows of `data`, from byte
    `start` on (the line before it is numbered `line`). Each chunk's output is
    sized from the length of the first lines (counting the lines would cost a
    tenth of the parse); a chunk that fills up is followed by another."""
    roles = np.array([ROLES.get(n, -1) for n in names], np.int8).tobytes()
    sample = data[start : start + (64 << 10)]
    typical = max(16, len(sample) // (sample.count(b"\n") + 1))
    while start < len(data):
        cap = min(CHUNK, (len(data) - start) * 9 // (typical * 8) + 64)
        out = np.empty((COLS, cap), np.int64)
        rows, start, line = compiled.parse(data, roles, start, line, out, cap)
        yield columns(data, names, out[:, :rows])


def columns(data: bytes, names: list[str], m: np.ndarray) -> dict:
    """The reader's columns (aws.py's `_records` takes them) of parsed rows."""
    bits = m[BITS]
    given = set(names)
    cols: dict = {"n": m.shape[1], "line": m[LINE], "offset": m[OFF]}
    cols["shape_ok"] = (bits >> 27) & 1 == 1
    garbled = np.zeros(m.shape[1], bool)
    nums = {}
    for k, name in enumerate(NUMBERS):
        state = (bits >> (2 * k)) & 3
        present = state == GIVEN
        nums[name] = (np.where(present, m[k], 0), present)
        garbled |= state == OTHER
    cols["nums"], cols["garbled"] = nums, garbled
    for j, name in enumerate(ADDRESSES):
        if name in given:
            cols[name] = _addresses(data, m[V4 + j], m[TEXT + j], (bits >> (16 + 2 * j)) & 3)
    if "log-status" in given:
        status = (bits >> 25) & 3
        cols["status"] = (status == OK, status == NODATA, status == SKIPDATA)
    if "action" in given:
        cols["rejected"] = (bits >> 24) & 1 == 1
    cols["observer"] = m[ENI].view(np.uint64)
    return cols


def _addresses(data: bytes, quads, refs, state) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hi, lo, ok) of one address field: dotted quads as the parser read them;
    other texts (IPv6, or not an address) each parsed once by Python."""
    n = len(state)
    ok = state == GIVEN
    hi = np.zeros(n, np.uint64)
    lo = np.where(ok, quads.astype(np.uint64) | np.uint64(V4_MAPPED), np.uint64(0))
    other = np.flatnonzero(state == OTHER)
    if len(other):
        texts = _texts(data, refs[other])
        distinct, at = np.unique(texts, return_inverse=True)
        parsed = [_address(t) for t in distinct.tolist()]
        found = np.array([v is not None for v in parsed], bool)
        value = [v or 0 for v in parsed]
        d_hi = np.array([v >> 64 for v in value], np.uint64)
        d_lo = np.array([v & 0xFFFFFFFFFFFFFFFF for v in value], np.uint64)
        at = at.reshape(-1)
        hi[other], lo[other], ok[other] = d_hi[at], d_lo[at], found[at]
    return hi, lo, ok


WIDEST = 64  # longer than any address text: such a value is no address


def _texts(data: bytes, refs: np.ndarray) -> np.ndarray:
    """The field texts (offset << 16 | length) as fixed-width bytes; one longer
    than WIDEST is cut, and stays no address (its length tells)."""
    off, length = refs >> 16, refs & 0xFFFF
    width = int(min(length.max(initial=1), WIDEST + 1))
    buf = np.frombuffer(data, np.uint8)
    at = off[:, None] + np.arange(width)
    inside = np.arange(width) < length[:, None]
    chars = np.where(inside, buf[np.minimum(at, len(buf) - 1)], 0).astype(np.uint8)
    return np.ascontiguousarray(chars).view(f"S{width}").reshape(-1)


def _address(text: bytes) -> int | None:
    if len(text) > WIDEST:
        return None
    try:
        return to_int(ipaddress.ip_address(text.decode("ascii").strip()))
    except (ValueError, UnicodeDecodeError):
        return None
