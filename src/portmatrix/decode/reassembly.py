"""Later IP fragments carry no transport header: give them the ports of their
first fragment, so they join its flow instead of inventing a port-0 flow.

Fragments of one datagram share (source, destination, protocol, identification).
First fragments are remembered across batches (a bounded table, oldest dropped
first); a later fragment whose first fragment is never seen keeps port 0 and
is counted.
"""

from __future__ import annotations

import numpy as np

from portmatrix.decode import batch as b
from portmatrix.decode.batch import PacketBatch
from portmatrix.decode.keyhash import mix

MEMORY = 1 << 16  # first fragments remembered


class FragmentPorts:
    def __init__(self) -> None:
        self.keys = np.zeros(0, np.uint64)  # sorted
        self.values = np.zeros((0, 3), np.int64)  # sport, dport, icmp_req
        self.unresolved = 0

    @staticmethod
    def _key(rows: PacketBatch, sel: np.ndarray) -> np.ndarray:
        word = (rows.proto[sel].astype(np.uint64) << np.uint64(32)) | rows.frag_id[sel].astype(
            np.uint64
        )
        return mix(rows.src_hi[sel], rows.src_lo[sel], rows.dst_hi[sel], rows.dst_lo[sel], word)

    def resolve(self, rows: PacketBatch) -> None:
        """Fill in the ports of later fragments in place; remember first fragments."""
        first = np.flatnonzero((rows.frag == b.FIRST_FRAGMENT) & (rows.kind == b.PACKET))
        if len(first):
            keys = np.concatenate([self.keys, self._key(rows, first)])
            values = np.concatenate(
                [
                    self.values,
                    np.stack([rows.sport[first], rows.dport[first], rows.icmp_req[first]], axis=1),
                ]
            )
            keys, values = keys[-MEMORY:], values[-MEMORY:]
            # Keep the newest entry for a key: sort stably, then take the last of each run.
            order = np.argsort(keys, kind="stable")
            keys, values = keys[order], values[order]
            last = np.r_[keys[1:] != keys[:-1], True]
            self.keys, self.values = keys[last], values[last]
        later = np.flatnonzero((rows.frag == b.LATER_FRAGMENT) & (rows.kind == b.PACKET))
        if not len(later):
            return
        keys = self._key(rows, later)
        pos = np.searchsorted(self.keys, keys)
        pos = np.minimum(pos, max(len(self.keys) - 1, 0))
        found = (self.keys[pos] == keys) if len(self.keys) else np.zeros(len(keys), bool)
        hit = later[found]
        rows.sport[hit] = self.values[pos[found], 0]
        rows.dport[hit] = self.values[pos[found], 1]
        rows.icmp_req[hit] = self.values[pos[found], 2]
        self.unresolved += int((~found).sum())
