"""What a capture source learns about its capture besides the packets: interfaces,
their statistics, drops, where reading stopped, the digest. The packets
themselves come as `decode.batch.RawBatch`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portmatrix.decode.names import Claims

# Interfaces one capture may describe (pcapng interface descriptions, distinct
# NFLOG rules): a file that describes more is damaged or hostile, and each one
# costs memory and a line in every report.
MAX_INTERFACES = 4096


def _claims():
    from portmatrix.decode.names import Claims

    return Claims()


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

    def plus(self, other: InterfaceStats) -> InterfaceStats:
        """The counters of two sections of one interface, added (None: never given)."""
        out = InterfaceStats(iface=self.iface)
        for f in fields(self):
            if f.name != "iface":
                a, b = getattr(self, f.name), getattr(other, f.name)
                setattr(out, f.name, None if a is None and b is None else (a or 0) + (b or 0))
        return out


def is_capture_format(fmt: str) -> bool:
    """A capture's format (`CaptureInfo.format`: pcap, pcap-ns, pcapng, +gzip), or
    none (a file never read), as against a flow-record format (aws-vpc, zeek, ...)."""
    return not fmt or fmt.startswith("pcap")


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
    stats: dict[int, InterfaceStats] = field(default_factory=dict)  # interface -> counters
    truncated: str = ""  # why and where reading stopped early, "" when it did not
    unreadable: Exception | None = None  # why the file could not be read at all
    notices: list[str] = field(default_factory=list)
    dns: dict[str, list[int]] = field(default_factory=dict)  # role hostname -> addresses answered
    dns_unread: int = 0  # DNS responses not read: over TCP, in tunnels, fragmented
    # Role hostnames clients named in TLS SNI, HTTP Host, QUIC (decode.names.Claims)
    names: Claims = field(default_factory=lambda: _claims())
    gaps: int = 0  # flow records the exporter says are incomplete (AWS SKIPDATA, sampled)
    # label(): (link type, name) -> interface, for the first `_indexed` interfaces
    _labels: dict[tuple[int, str], int] = field(default_factory=dict, repr=False, compare=False)
    _indexed: int = field(default=0, repr=False, compare=False)

    def label(self, linktype: int, name: str) -> int:
        """The number of the interface named `name` (of `linktype`), added when new:
        decoders name what an interface alone does not say (the firewall rule
        that logged an NFLOG packet). Past MAX_INTERFACES, new names share one
        interface that says so: packets must not grow the list without end."""
        for number in range(self._indexed, len(self.interfaces)):
            iface = self.interfaces[number]
            self._labels.setdefault((iface.linktype, iface.name), number)
        key = (linktype, name)
        if key not in self._labels and len(self.interfaces) >= MAX_INTERFACES:
            key = (linktype, f"(more than {MAX_INTERFACES} interfaces)")
        if key not in self._labels:
            self.interfaces.append(Interface(linktype=linktype, name=key[1]))
            self._labels[key] = len(self.interfaces) - 1
        self._indexed = len(self.interfaces)
        return self._labels[key]

    @property
    def drops(self) -> int:
        """Packets the capture itself says it dropped (pcapng statistics)."""
        return sum((s.dropped or 0) + (s.os_dropped or 0) for s in self.stats.values())
