"""Arrow columns into numpy: the conversions every columnar flow-record reader
needs — addresses parsed once per distinct value, numbers with their absent
values, and the rows that could not be read, by line.

pyarrow is optional (`pip install 'portmatrix[flowlogs]'`) and imported here,
on first use.
"""

from __future__ import annotations

import ipaddress

import numpy as np

from portmatrix.addresses import V4_MAPPED, to_int
from portmatrix.lazy import require


def pyarrow():
    """pyarrow, or an error naming the extra that installs it."""
    return require("pyarrow", extra="flowlogs")


def require_module(name: str):
    """A pyarrow submodule (csv, compute, parquet, json), or the install hint."""
    return require(name, extra="flowlogs")


def address_columns(array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hi, lo, ok) of an Arrow column of address texts: each distinct address is
    parsed once (a day of flow logs holds few distinct addresses and many rows),
    IPv4 ones with array operations. `ok` is False where the value is absent or
    not an address."""
    pa = pyarrow()
    pc = require_module("pyarrow.compute")
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not pa.types.is_dictionary(array.type):
        array = pc.dictionary_encode(array)
    values = array.dictionary
    n = len(values)
    hi = np.zeros(n + 1, np.uint64)  # the last slot stands for "absent"
    lo = np.zeros(n + 1, np.uint64)
    good = np.zeros(n + 1, bool)
    v4, quads = _ipv4(values)
    lo[:n][v4] = quads[v4] | np.uint64(V4_MAPPED)
    good[:n][v4] = True
    for i in np.flatnonzero(~v4).tolist():  # IPv6, or not an address
        try:
            value = to_int(ipaddress.ip_address(str(values[i].as_py()).strip()))
        except ValueError:
            continue
        hi[i], lo[i], good[i] = value >> 64, value & 0xFFFFFFFFFFFFFFFF, True
    at = array.indices.fill_null(n).to_numpy(zero_copy_only=False).astype(np.int64)
    return hi[at], lo[at], good[at]


_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_QUAD = rf"^{_OCTET}(\.{_OCTET}){{3}}$"


def _ipv4(values) -> tuple[np.ndarray, np.ndarray]:
    """(is a dotted quad, its 32-bit value) for Arrow strings, as array operations."""
    pa = pyarrow()
    pc = require_module("pyarrow.compute")
    values = values.cast(pa.string())
    ok = np.asarray(pc.match_substring_regex(values, _QUAD).fill_null(False))
    quads = np.zeros(len(values), np.uint64)
    if ok.any():
        parts = pc.list_flatten(pc.split_pattern(values.filter(pa.array(ok)), "."))
        octets = parts.cast(pa.uint64()).to_numpy().reshape(-1, 4)
        quads[ok] = (octets[:, 0] << 24) | (octets[:, 1] << 16) | (octets[:, 2] << 8) | octets[:, 3]
    return ok, quads


def _decoded(array):
    """One contiguous, dictionary-decoded array of a column."""
    pa = pyarrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array


def numbers(array, absent: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(values as int64, present) of an Arrow column of integers (or of digit
    strings); absent and malformed values are `absent`, with present False."""
    pa = pyarrow()
    pc = require_module("pyarrow.compute")
    array = _decoded(array)
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        array = pc.utf8_trim_whitespace(array)
        digits = pc.match_substring_regex(array, r"^-?[0-9]{1,18}$")
        array = pc.if_else(digits, array, None).cast(pa.int64())
    elif pa.types.is_floating(array.type):
        array = pc.floor(array).cast(pa.int64())
    elif array.type != pa.int64():
        array = array.cast(pa.int64())
    # The values buffer as it is; absent slots are masked here, not filled by a kernel.
    values = np.frombuffer(array.buffers()[1], np.int64, len(array), array.offset * 8)
    if not array.null_count:
        return values, np.ones(len(array), bool)
    present = np.asarray(array.is_valid())
    return np.where(present, values, absent), present


def malformed(array) -> np.ndarray:
    """Bool per row: a value is given, but is no (whole) number."""
    pa = pyarrow()
    pc = require_module("pyarrow.compute")
    array = _decoded(array)
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        return np.zeros(len(array), bool)
    number = pc.match_substring_regex(pc.utf8_trim_whitespace(array), r"^-?[0-9]{1,18}$")
    return np.asarray(array.is_valid()) & ~np.asarray(number.fill_null(False))


def words(array) -> tuple[np.ndarray, list[str]]:
    """(index per row, the distinct words) of a text column, trimmed and in upper
    case; absent values point one past the words. Encoded once, asked often."""
    pa = pyarrow()
    pc = require_module("pyarrow.compute")
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not pa.types.is_dictionary(array.type):
        array = pc.dictionary_encode(array.cast(pa.string()))
    found = [str(w).strip().upper() for w in array.dictionary.to_pylist()]
    at = array.indices.fill_null(len(found)).to_numpy(zero_copy_only=False)
    return at.astype(np.int64, copy=False), found


def among(encoded: tuple[np.ndarray, list[str]], *choices: str) -> np.ndarray:
    """Bool per row: the word is one of `choices` (of a `words` encoding)."""
    at, found = encoded
    return np.array([w in choices for w in found] + [False])[at]


def texts_equal(array, *choices: str) -> np.ndarray:
    """Bool per row: the text (trimmed, any case) is one of `choices`."""
    return among(words(array), *choices)


_ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)?$"


def times(array) -> tuple[np.ndarray, np.ndarray]:
    """(ns since the epoch, present) of an Arrow column of RFC 3339 texts (UTC when
    no zone is given); malformed values are 0 with present False."""
    pa = pyarrow()
    pc = require_module("pyarrow.compute")
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_timestamp(array.type):
        stamps = array.cast(pa.timestamp("ns", tz="UTC"))
    else:
        array = pc.utf8_trim_whitespace(array.cast(pa.string()))
        valid = pc.match_substring_regex(array, _ISO)
        zoned = pc.match_substring_regex(array, r"(Z|[+-]\d\d:\d\d)$")
        array = pc.if_else(zoned, array, pc.binary_join_element_wise(array, "Z", ""))
        stamps = pc.if_else(valid, array, None).cast(pa.timestamp("ns", tz="UTC"))
    present = np.asarray(stamps.is_valid())
    values = stamps.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    return values.astype(np.int64, copy=False), present
