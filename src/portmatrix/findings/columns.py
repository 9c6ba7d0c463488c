"""Numpy helpers for grouping rows: dense ids of row tuples, distinct counts and
the first k rows of each group, port ranges — so that findings cost a sort of the
flows and a few lines of Python per problem, never a Python step per flow."""

from __future__ import annotations

import numpy as np

from portmatrix.decode.keyhash import mix


def dense(*cols: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """An id per row, equal for equal tuples; how many distinct tuples there are;
    and one row of each id.

    Tuples that pack into 62 bits (small numbers: groups, protocols, ports) are
    numbered in sorted order, cols[0] first; wider ones (addresses) in the order of
    a 64-bit hash — one sort of one column either way, checked for collisions."""
    n = len(cols[0])
    if n == 0:
        return np.zeros(0, np.int64), 0, np.zeros(0, np.int64)
    key = _packed(cols)
    hashed = key is None
    if hashed:
        key = mix(*(np.asarray(c).astype(np.uint64) for c in cols))
    order = np.argsort(key)
    s = key[order]
    change = np.ones(n, bool)
    change[1:] = s[1:] != s[:-1]
    if hashed:
        twins = np.flatnonzero(~change)
        if len(twins) and any((c[order[twins]] != c[order[twins - 1]]).any() for c in cols):
            order = np.lexsort(cols[::-1])  # a hash collision: compare the columns
            change[1:] = False
            for c in cols:
                sc = c[order]
                change[1:] |= sc[1:] != sc[:-1]
    ranks = np.cumsum(change) - 1
    ids = np.empty(n, np.int64)
    ids[order] = ranks
    return ids, int(ranks[-1]) + 1, order[change]


def _packed(cols) -> np.ndarray | None:
    """The columns as one int64 in lexicographic order, or None when too wide."""
    spans, bits = [], 0
    for c in cols:
        lo, hi = int(c.min()), int(c.max())
        width = (hi - lo).bit_length()
        bits += width
        spans.append((lo, width))
    if bits > 62:
        return None
    key = np.zeros(len(cols[0]), np.int64)
    for c, (lo, width) in zip(cols, spans, strict=True):
        if c.dtype == np.uint64:
            shifted = (c - np.uint64(lo)).astype(np.int64)
        else:
            shifted = c.astype(np.int64) - lo
        key = (key << width) | shifted
    return key


def distinct_per(group: np.ndarray, value: np.ndarray, groups: int) -> np.ndarray:
    """How many distinct `value`s each group holds."""
    _, _, first = dense(group, value)
    return np.bincount(group[first], minlength=groups)


def first_k(group: np.ndarray, k: int) -> np.ndarray:
    """Positions of the first k rows of each group, for `group` sorted ascending."""
    if not len(group):
        return np.zeros(0, np.int64)
    start = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
    sizes = np.diff(np.r_[start, len(group)])
    rank = np.arange(len(group)) - np.repeat(start, sizes)
    return np.flatnonzero(rank < k)


def port_ranges(
    group: np.ndarray, proto: np.ndarray, port: np.ndarray, groups: int, shown: int = 12
) -> list[list[tuple[int, int, int]]]:
    """Per group, its distinct (proto, first port, last port) runs, at most `shown`
    of them, and a last (proto, -1, n) entry saying how many runs were left out."""
    out: list[list[tuple[int, int, int]]] = [[] for _ in range(groups)]
    if not len(group):
        return out
    _, _, first = dense(group, proto, port)  # packed: ids in (group, proto, port) order
    g, p, q = group[first], proto[first], port[first]
    new = np.ones(len(g), bool)
    new[1:] = (g[1:] != g[:-1]) | (p[1:] != p[:-1]) | (q[1:] != q[:-1] + 1)
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(g)] - 1
    rg = g[starts]
    keep = first_k(rg, shown)
    per = np.bincount(rg, minlength=groups)
    for gi, pi, lo, hi in zip(
        rg[keep].tolist(),
        p[starts][keep].tolist(),
        q[starts][keep].tolist(),
        q[ends][keep].tolist(),
        strict=True,
    ):
        out[gi].append((pi, lo, hi))
    for gi in np.flatnonzero(per > shown).tolist():
        out[gi].append((0, -1, int(per[gi] - shown)))
    return out


def unique(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For 64-bit keys: one row of each distinct key, every row's key id, and how
    many rows each key has — `np.unique` without its stable sort (which is several
    times slower on a million keys, and whose first-row guarantee we do not need)."""
    n = len(keys)
    if not n:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    order = np.argsort(keys)
    s = keys[order]
    change = np.ones(n, bool)
    change[1:] = s[1:] != s[:-1]
    ranks = np.cumsum(change) - 1
    inverse = np.empty(n, np.int64)
    inverse[order] = ranks
    starts = np.flatnonzero(change)
    counts = np.diff(np.r_[starts, n])
    return order[starts], inverse, counts
