"""Build capture files packet by packet, for tests whose expected result is known.

- `write_pcap` / `pcap_bytes`: classic pcap in either byte order, µs or ns,
  any link type and snaplen (longer frames are cut, keeping their wire length).
- `Pcapng`: a pcapng file block by block: sections in either byte order,
  interfaces with their own link type and `if_tsresol`, enhanced, simple and
  obsolete packet blocks, interface statistics, and arbitrary (unknown) blocks.
- `gzipped`, `cut`, `patch`: damage or compress a file on disk.
- `raw_batch`, `decode_packets`, `flows_of`, `flow_dicts`: run packets through
  the pipeline in memory, without files.
- `ether`, `ip`, `tcp_session`: scapy packets with fixed addresses (scapy never
  has to look up a route or resolve a MAC address, so building is offline).

Packets are scapy packets, `bytes`, or `Frame`s (bytes with an exact timestamp,
wire length and interface). scapy is imported inside the functions that need
it, never when this module is imported; portmatrix does not depend on it:
`pip install 'portmatrix[scapy]'` (a function that needs it and does not find it
says so).
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z, in ns
STEP = 1_000_000  # 1 ms between consecutive packets unless told otherwise
MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


@dataclass(frozen=True)
class Frame:
    """One captured frame: its bytes, timestamp (ns since the epoch, UTC), wire
    length (None: as long as the bytes) and interface (pcapng: within its section)."""

    data: bytes
    ts: int = T0
    wirelen: int | None = None
    iface: int = 0

    @property
    def length(self) -> int:
        return len(self.data) if self.wirelen is None else self.wirelen


def frames(packets: Iterable[Any], *, start: int = T0, step: int = STEP) -> list[Frame]:
    """Frames from scapy packets, bytes or Frames; the i-th gets `start + i * step`
    unless it is already a Frame (kept as it is)."""
    out = []
    for i, p in enumerate(packets):
        if isinstance(p, Frame):
            out.append(p)
        else:
            out.append(Frame(bytes(p), ts=start + i * step))
    return out


# Classic pcap ---------------------------------------------------------------


def pcap_bytes(
    packets: Iterable[Any],
    *,
    linktype: int = 1,
    little: bool = True,
    nanos: bool = False,
    snaplen: int = 262144,
    version: tuple[int, int] = (2, 4),
    start: int = T0,
    step: int = STEP,
) -> bytes:
    """A classic pcap file. Frames longer than `snaplen` are cut to it."""
    e = "<" if little else ">"
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(e + "IHHiIII", magic, version[0], version[1], 0, 0, snaplen, linktype)]
    for f in frames(packets, start=start, step=step):
        data = f.data[:snaplen]
        sec, ns = divmod(f.ts, 1_000_000_000)
        frac = ns if nanos else ns // 1000
        out.append(struct.pack(e + "IIII", sec, frac, len(data), f.length) + data)
    return b"".join(out)


def write_pcap(path: str | Path, packets: Iterable[Any], **options: Any) -> Path:
    """Write `pcap_bytes(packets, **options)` to `path`."""
    path = Path(path)
    path.write_bytes(pcap_bytes(packets, **options))
    return path


def pcap_record_offsets(data: bytes) -> list[int]:
    """Byte offset of each record of a classic pcap file (either byte order)."""
    e = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    out, off = [], 24
    while off + 16 <= len(data):
        out.append(off)
        off += 16 + struct.unpack_from(e + "I", data, off + 8)[0]
    return out


# pcapng ---------------------------------------------------------------------

SHB, IDB, OPB, SPB, NRB, ISB, EPB = 0x0A0D0D0A, 1, 2, 3, 4, 5, 6


def ticks(ts_ns: int, tsresol: int = 6) -> int:
    """Timestamp ticks of an interface with this `if_tsresol` byte (rounded down)."""
    exp = tsresol & 0x7F
    if tsresol & 0x80:
        return ts_ns * (1 << exp) // 1_000_000_000
    if exp <= 9:
        return ts_ns // 10 ** (9 - exp)
    return ts_ns * 10 ** (exp - 9)


class Pcapng:
    """A pcapng file built block by block; `bytes()` or `write(path)` at the end.

    `section()` starts a section (the first call may be implicit: any block
    added before it opens a little-endian one). `interface()` returns the
    interface's index within the current section, which the packet blocks take.
    """

    def __init__(self) -> None:
        self.blocks: list[bytes] = []
        self.endian = "<"
        self.ifaces: list[int] = []  # if_tsresol of each interface of the current section

    # Blocks --------------------------------------------------------------

    def block(self, btype: int, body: bytes) -> Pcapng:
        """Any block, e.g. one of a type readers do not know (padded to 4 bytes)."""
        if not self.blocks and btype != SHB:
            self.section()
        body = _pad4(body)
        size = 12 + len(body)
        self.blocks.append(
            struct.pack(self.endian + "II", btype, size)
            + body
            + struct.pack(self.endian + "I", size)
        )
        return self

    def section(self, little: bool = True) -> Pcapng:
        self.endian = "<" if little else ">"
        self.ifaces = []
        body = struct.pack(self.endian + "IHHq", 0x1A2B3C4D, 1, 0, -1)
        return self.block(SHB, body + self._options([]))

    def interface(
        self,
        linktype: int,
        *,
        tsresol: int | None = None,
        snaplen: int = 0,
        name: str | None = None,
        tsoffset: int | None = None,
    ) -> int:
        """An interface description; `tsresol` None leaves the default (µs)."""
        opts: list[tuple[int, bytes]] = []
        if name is not None:
            opts.append((2, name.encode()))
        if tsresol is not None:
            opts.append((9, bytes([tsresol])))
        if tsoffset is not None:
            opts.append((14, struct.pack(self.endian + "q", tsoffset)))
        body = struct.pack(self.endian + "HHI", linktype, 0, snaplen)
        if not self.blocks:
            self.section()
        self.block(IDB, body + self._options(opts))
        self.ifaces.append(6 if tsresol is None else tsresol)
        return len(self.ifaces) - 1

    def packet(
        self,
        data: Any,
        *,
        iface: int = 0,
        ts: int = T0,
        wirelen: int | None = None,
        caplen: int | None = None,
        raw_ticks: int | None = None,
    ) -> Pcapng:
        """An enhanced packet block; `ts` in ns (converted to the interface's ticks)
        unless `raw_ticks` gives the ticks themselves. `caplen` cuts the data."""
        data = bytes(data)
        t = raw_ticks if raw_ticks is not None else ticks(ts, self._resol(iface))
        cap = data[: len(data) if caplen is None else caplen]
        wire = len(data) if wirelen is None else wirelen
        head = struct.pack(self.endian + "IIIII", iface, t >> 32, t & 0xFFFFFFFF, len(cap), wire)
        return self.block(EPB, head + _pad4(cap) + self._options([]))

    def packets(
        self, packets: Iterable[Any], *, iface: int = 0, start: int = T0, step: int = STEP
    ) -> Pcapng:
        for f in frames(packets, start=start, step=step):
            self.packet(f.data, iface=iface, ts=f.ts, wirelen=f.wirelen)
        return self

    def simple(self, data: Any, *, wirelen: int | None = None) -> Pcapng:
        """A simple packet block (no timestamp, interface 0 of the section). With
        `wirelen` larger than the data, the data is what the snaplen kept."""
        data = bytes(data)
        wire = len(data) if wirelen is None else wirelen
        return self.block(SPB, struct.pack(self.endian + "I", wire) + _pad4(data))

    def obsolete(self, data: Any, *, iface: int = 0, ts: int = T0, drops: int = 0) -> Pcapng:
        """An obsolete packet block (type 2)."""
        data = bytes(data)
        t = ticks(ts, self._resol(iface))
        head = struct.pack(
            self.endian + "HHIIII", iface, drops, t >> 32, t & 0xFFFFFFFF, len(data), len(data)
        )
        return self.block(OPB, head + _pad4(data) + self._options([]))

    def stats(
        self,
        iface: int = 0,
        *,
        ts: int = T0,
        received: int | None = None,
        dropped: int | None = None,
        filter_accepted: int | None = None,
        os_dropped: int | None = None,
        delivered: int | None = None,
    ) -> Pcapng:
        """An interface statistics block."""
        t = ticks(ts, self._resol(iface)) if iface < len(self.ifaces) else 0
        opts = [
            (code, struct.pack(self.endian + "Q", value))
            for code, value in (
                (4, received),
                (5, dropped),
                (6, filter_accepted),
                (7, os_dropped),
                (8, delivered),
            )
            if value is not None
        ]
        head = struct.pack(self.endian + "III", iface, t >> 32, t & 0xFFFFFFFF)
        return self.block(ISB, head + self._options(opts))

    # Output --------------------------------------------------------------

    def bytes(self) -> bytes:
        return b"".join(self.blocks)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_bytes(self.bytes())
        return path

    def offsets(self) -> list[int]:
        """Byte offset of every block written so far."""
        out, off = [], 0
        for blk in self.blocks:
            out.append(off)
            off += len(blk)
        return out

    def _resol(self, iface: int) -> int:
        return self.ifaces[iface] if iface < len(self.ifaces) else 6

    def _options(self, opts: Sequence[tuple[int, bytes]]) -> bytes:
        if not opts:
            return b""
        out = b"".join(
            struct.pack(self.endian + "HH", code, len(value)) + _pad4(value) for code, value in opts
        )
        return out + struct.pack(self.endian + "HH", 0, 0)


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


# Damage and compression -----------------------------------------------------


def gzipped(path: str | Path, out: str | Path | None = None) -> Path:
    """A gzip-compressed copy of `path` (default: `path` + ".gz")."""
    path = Path(path)
    out = Path(out) if out is not None else path.with_name(path.name + ".gz")
    out.write_bytes(gzip.compress(path.read_bytes(), mtime=0))
    return out


def cut(path: str | Path, size: int, out: str | Path | None = None) -> Path:
    """A copy of the first `size` bytes of `path` (default: in place)."""
    path = Path(path)
    out = Path(out) if out is not None else path
    out.write_bytes(path.read_bytes()[:size])
    return out


def patch(path: str | Path, offset: int, data: bytes) -> Path:
    """Overwrite bytes of `path` at `offset`, in place."""
    path = Path(path)
    buf = bytearray(path.read_bytes())
    buf[offset : offset + len(data)] = data
    path.write_bytes(bytes(buf))
    return path


# In memory: packets -> raw batch -> decoded rows -> flows ----------------------


def raw_batch(
    packets: Iterable[Any],
    linktype: int | Sequence[int] = 1,
    *,
    start: int = T0,
    step: int = STEP,
    first_frame: int = 1,
):
    """A RawBatch of these packets, as a reader would yield it (no file involved)."""
    from portmatrix.decode.batch import RawBatch

    fs = frames(packets, start=start, step=step)
    n = len(fs)
    sizes = np.array([len(f.data) for f in fs], dtype=np.int64)
    offset = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if n else sizes
    data = np.zeros(int(sizes.sum()), dtype=np.uint8)
    for f, off in zip(fs, offset.tolist(), strict=True):
        data[off : off + len(f.data)] = np.frombuffer(f.data, dtype=np.uint8)
    lt = np.broadcast_to(np.asarray(linktype, dtype=np.int32), (n,)).copy()
    return RawBatch(
        data=data,
        offset=offset,
        caplen=sizes.copy(),
        wirelen=np.array([f.length for f in fs], dtype=np.int64),
        ts=np.array([f.ts for f in fs], dtype=np.int64),
        linktype=lt,
        iface=np.array([f.iface for f in fs], dtype=np.int32),
        frame=np.arange(first_frame, first_frame + n, dtype=np.int64),
        file_offset=offset + 24,
    )


def decode_packets(packets: Iterable[Any], linktype: int | Sequence[int] = 1, **options: Any):
    """(PacketBatch, DecodeCounts) of these packets."""
    from portmatrix.decode import decode

    return decode(raw_batch(packets, linktype, **options))


def packet_rows(batch) -> list[dict]:
    """Decoded rows (a PacketBatch) as dicts, addresses as text."""
    from portmatrix.addresses import to_text

    names = ("frame", "vlan", "encap", "proto", "sport", "dport", "tcp_flags", "tcp_seq")
    names += ("icmp_type", "icmp_code", "icmp_req", "kind", "frag", "frag_id", "wirelen")
    out = []
    for i in range(len(batch)):
        row = {n: int(getattr(batch, n)[i]) for n in names}
        row["src"] = to_text((int(batch.src_hi[i]) << 64) | int(batch.src_lo[i]))
        row["dst"] = to_text((int(batch.dst_hi[i]) << 64) | int(batch.dst_lo[i]))
        out.append(row)
    return out


def flows_of(packets: Iterable[Any], linktype: int | Sequence[int] = 1, **options: Any):
    """Finished Flows of these packets, built in one table update."""
    from portmatrix.flows.table import FlowTable

    rows, counts = decode_packets(packets, linktype, **options)
    counts.check()
    table = FlowTable()
    table.update(rows)
    return table.finish()


def flow_dicts(flows, several_files: bool = False) -> list[dict]:
    """Finished flows as export rows (dicts keyed by the documented column names)."""
    from portmatrix.report.flow_rows import flow_columns, rows

    return rows(flow_columns(flows, several_files=several_files))


# scapy packets with fixed addresses ------------------------------------------


def scapy(module: str):
    """A scapy module (`inet`, `inet6`, `l2`, ...), or an error naming the extra
    that installs scapy: portmatrix itself does not need it."""
    from portmatrix.lazy import require

    return require(f"scapy.layers.{module}", extra="scapy")


def ip(src: str, dst: str, **fields: Any):
    """IPv4 or IPv6 header (by the address family of `src`)."""
    if ":" in src:
        return scapy("inet6").IPv6(src=src, dst=dst, **fields)
    return scapy("inet").IP(src=src, dst=dst, **fields)


def ether(payload: Any, *, vlans: Sequence[int] = (), src: str = MAC_A, dst: str = MAC_B):
    """`payload` in an Ethernet frame, under 802.1Q tags (outermost first; more
    than one tag: the outer ones are 802.1ad S-tags)."""
    l2 = scapy("l2")
    Dot1AD, Dot1Q, Ether = l2.Dot1AD, l2.Dot1Q, l2.Ether

    frame = Ether(src=src, dst=dst)
    for i, vid in enumerate(vlans):
        outer = i < len(vlans) - 1
        frame = frame / (Dot1AD(vlan=vid) if outer else Dot1Q(vlan=vid))
    return frame / payload


def tcp_session(
    client: str,
    server: str,
    sport: int,
    dport: int,
    *,
    isn: int = 1000,
    server_isn: int = 50000,
    data: Sequence[bytes] = (b"hello",),
    close: str = "fin",
    handshake: bool = True,
) -> list:
    """A TCP connection as IP packets: SYN, SYN-ACK, ACK (unless `handshake` is
    False), each payload sent by the client and acknowledged, then `close`:
    "fin" (FIN both ways and the last ACK), "rst" (client RST) or "open"."""
    TCP = scapy("inet").TCP

    def c2s(flags, seq, ack, load=b""):
        pkt = ip(client, server) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack)
        return pkt / load if load else pkt

    def s2c(flags, seq, ack):
        return ip(server, client) / TCP(sport=dport, dport=sport, flags=flags, seq=seq, ack=ack)

    out = []
    cseq, sseq = isn + 1, server_isn + 1
    if handshake:
        out += [c2s("S", isn, 0), s2c("SA", server_isn, cseq), c2s("A", cseq, sseq)]
    for load in data:
        out.append(c2s("PA", cseq, sseq, load))
        cseq += len(load)
        out.append(s2c("A", sseq, cseq))
    if close == "fin":
        out += [c2s("FA", cseq, sseq), s2c("FA", sseq, cseq + 1), c2s("A", cseq + 1, sseq + 1)]
    elif close == "rst":
        out.append(c2s("R", cseq, 0))
    elif close != "open":
        raise ValueError(f"close must be fin, rst or open, not {close!r}")
    return out


# Reading back -----------------------------------------------------------------


@dataclass(frozen=True)
class ReadFrame:
    """One frame as a reader yielded it."""

    frame: int
    ts: int
    caplen: int
    wirelen: int
    linktype: int
    iface: int
    file_offset: int
    data: bytes


def read_frames(path: str | Path):
    """([ReadFrame...], CaptureInfo) of a capture read through `Capture`, checking
    on the way that every batch is well formed (equal lengths, frames inside data)."""
    from portmatrix.sources.capture import Capture

    capture = Capture(str(path))
    out = []
    for raw in capture.batches():
        n = len(raw)
        for name in ("offset", "caplen", "wirelen", "ts", "linktype", "iface", "file_offset"):
            assert len(getattr(raw, name)) == n, name
        assert int((raw.offset + raw.caplen).max()) <= len(raw.data)
        for i in range(n):
            off, size = int(raw.offset[i]), int(raw.caplen[i])
            out.append(
                ReadFrame(
                    frame=int(raw.frame[i]),
                    ts=int(raw.ts[i]),
                    caplen=size,
                    wirelen=int(raw.wirelen[i]),
                    linktype=int(raw.linktype[i]),
                    iface=int(raw.iface[i]),
                    file_offset=int(raw.file_offset[i]),
                    data=raw.data[off : off + size].tobytes(),
                )
            )
    return out, capture.info
