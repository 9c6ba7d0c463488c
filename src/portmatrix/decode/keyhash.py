"""A 64-bit mix of several uint64 columns, for grouping packets by flow key.

Sorting one hash column is far cheaper than sorting five key columns; rows
whose hashes collide are told apart by comparing the full key afterwards.
"""

from __future__ import annotations

import numpy as np

_K = [
    np.uint64(k)
    for k in (
        0x9E3779B97F4A7C15,
        0xBF58476D1CE4E5B9,
        0x94D049BB133111EB,
        0xD6E8FEB86659FD93,
        0xA0761D6478BD642F,
        0xE7037ED1A0B428DB,
    )
]


def mix(*columns: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = np.full(len(columns[0]), _K[0], dtype=np.uint64)
        for i, col in enumerate(columns):
            h = (h ^ col.astype(np.uint64, copy=False)) * _K[(i + 1) % len(_K)]
            h ^= h >> np.uint64(31)
        h *= _K[5]
        h ^= h >> np.uint64(29)
    return h
