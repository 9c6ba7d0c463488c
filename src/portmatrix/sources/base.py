"""What every capture source yields: raw packet batches as numpy columns, plus
what it learned about the capture (interfaces, drops, where it stopped).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from portmatrix.workers import usable_cpus


@dataclass
class RawBatch:
    """Undecoded packets: `data[offset[i]:offset[i] + caplen[i]]` is frame `frame[i]`.

    `data` is the chunk the packets were read into; bytes after a packet may
    belong to the next one, so decoders check lengths (and clamp reads) themselves.
    """

    data: np.ndarray  # uint8
    offset: np.ndarray  # int64, start of each packet in `data`
    caplen: np.ndarray  # int64, bytes captured
    wirelen: np.ndarray  # int64, bytes on the wire
    ts: np.ndarray  # int64, nanoseconds since the epoch (UTC)
    linktype: np.ndarray  # int32, per packet (pcapng interfaces differ)
    iface: np.ndarray  # int32, interface index (0 for classic pcap)
    frame: np.ndarray  # int64, 1-based frame number in the file
    file_offset: np.ndarray  # int64, byte offset of the record in the (uncompressed) file

    def __len__(self) -> int:
        return len(self.frame)

    def take(self, index: np.ndarray) -> RawBatch:
        """Some of the frames (the chunk they are in stays shared)."""
        per_frame = {k: v[index] for k, v in vars(self).items() if k != "data"}
        return RawBatch(data=self.data, **per_frame)


@dataclass
class Interface:
    linktype: int
    name: str = ""
    snaplen: int = 0
    tsresol: int = 6  # pcapng if_tsresol byte: 10^-n, or 2^-n with the top bit set
    tsoffset: int = 0  # seconds


@dataclass
class InterfaceStats:
    """Counters from a pcapng interface statistics block (the last one seen wins)."""

    iface: int
    received: int | None = None  # isb_ifrecv
    dropped: int | None = None  # isb_ifdrop: dropped by the interface/driver
    os_dropped: int | None = None  # isb_osdrop: dropped by the OS (buffer full)
    filter_accepted: int | None = None
    delivered: int | None = None


@dataclass
class CaptureInfo:
    """What a reader knows about one capture once read (or while reading)."""

    path: str
    format: str = ""  # pcap, pcap-ns, pcapng; with "+gzip" when compressed
    frames: int = 0
    bytes_read: int = 0  # of the (uncompressed) capture
    size: int | None = None  # file size on disk, when it is a file
    sha256: str = ""
    interfaces: list[Interface] = field(default_factory=list)
    stats: dict[int, InterfaceStats] = field(default_factory=dict)
    truncated: str = ""  # why and where reading stopped early, "" when it did not
    notices: list[str] = field(default_factory=list)
    dns: dict[str, list[int]] = field(default_factory=dict)  # role hostname -> addresses answered
    dns_unread: int = 0  # DNS responses not read: over TCP, in tunnels, fragmented

    @property
    def drops(self) -> int:
        """Packets the capture itself says it dropped (pcapng statistics)."""
        return sum((s.dropped or 0) + (s.os_dropped or 0) for s in self.stats.values())


class HashingReader:
    """A binary stream that hashes what passes through it (SHA-256 of the input file).

    With a spare CPU, hashing runs on a worker thread (hashlib releases the GIL
    on large buffers), so it overlaps with decoding instead of adding to it;
    buffers handed to the worker are never written again by the readers. On a
    single CPU a thread cannot overlap anything and only costs switches and
    cache misses, so each buffer is hashed as it is read, while it is in cache.
    """

    def __init__(self, raw) -> None:
        import queue
        import threading

        self.raw = raw
        self.hash = hashlib.sha256()
        self.count = 0
        self._thread = None
        if usable_cpus() > 1:
            self._queue: queue.SimpleQueue = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._work, daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while (data := self._queue.get()) is not None:
            self.hash.update(data)

    def _hash(self, data) -> None:
        if self._thread is None:
            self.hash.update(data)
        else:
            self._queue.put(data)

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data:
            self._hash(data)
            self.count += len(data)
        return data

    def readinto(self, buf) -> int:
        n = self.raw.readinto(buf) or 0
        if n:
            self._hash(memoryview(buf)[:n])
            self.count += n
        return n

    def read1(self, n: int = -1) -> bytes:
        data = self.raw.read1(n) if hasattr(self.raw, "read1") else self.raw.read(n)
        if data:
            self._hash(data)
            self.count += len(data)
        return data

    def fileno(self) -> int:
        return self.raw.fileno()

    def readinto1(self, buf) -> int:
        """At most one read of the underlying stream: what a pipe has now."""
        read = getattr(self.raw, "readinto1", self.raw.readinto)
        n = read(buf) or 0
        if n:
            self._hash(memoryview(buf)[:n])
            self.count += n
        return n

    def hexdigest(self) -> str:
        """Finish: hash the rest of the file, then the digest of all of it."""
        while self.read(1 << 20):
            pass
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        return self.hash.hexdigest()

    def close(self) -> None:
        self.raw.close()
