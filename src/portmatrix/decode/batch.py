"""The batches decoding reads and writes: raw packets in (from any source), packet
rows out (one row per IP packet, more than one for a tunnelled frame: the
outer packet and the inner one), plus per-frame decode buckets.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

# Per-frame buckets: every frame read lands in exactly one.
IP = 0  # decoded as IP
NON_IP = 1  # a link layer we understand carrying something else (ARP, LLDP, ...)
UNSUPPORTED_LINK = 2  # a link type we do not decode
# Undecodable, by reason:
TRUNC_LINK = 10
TRUNC_IP = 11
BAD_IP_VERSION = 12
BAD_IP_HEADER = 13
TRUNC_TRANSPORT = 14
BAD_MPLS = 15
UNKNOWN_IFACE = 16
ENCRYPTED_MACSEC = 17
ENCRYPTED_WLAN = 18
TOO_MANY_LAYERS = 19
TOO_MANY_EXT = 20

# How deep decoding goes. A frame deeper than this is undecodable for that reason
# (a packet inside too many tunnels is counted as too deep): never silently cut to
# its outer layers, or an attacker could hide a flow by wrapping it.
MAX_LAYERS = 12  # tags, labels or nested Ethernet headers in a row (ethertype.LAYERS)
MAX_EXT = 256  # IPv6 extension headers (libpcap's test capture chains 100)
MAX_TUNNELS = 3  # tunnels inside tunnels

UNDECODABLE = {
    TRUNC_LINK: "link header cut short",
    TRUNC_IP: "IP header cut short",
    BAD_IP_VERSION: "IP version is neither 4 nor 6",
    BAD_IP_HEADER: "IP header length invalid",
    TRUNC_TRANSPORT: "transport ports cut short",
    BAD_MPLS: "MPLS payload not IP or Ethernet",
    UNKNOWN_IFACE: "packet names an interface the file never described",
    ENCRYPTED_MACSEC: "encrypted (MACsec)",
    ENCRYPTED_WLAN: "encrypted (802.11 protected frame)",
    TOO_MANY_LAYERS: f"encapsulation deeper than {MAX_LAYERS} tags, labels or Ethernet headers",
    TOO_MANY_EXT: f"more than {MAX_EXT} IPv6 extension headers",
}
TOO_DEEP = (TOO_MANY_LAYERS, TOO_MANY_EXT)

# Non-IP frames are counted by Ethernet type; frames of a link with no Ethernet
# type get one of these (a PPP protocol number p is counted as -p).
WLAN_MANAGEMENT = -0x10001
WLAN_CONTROL = -0x10002
WLAN_NO_DATA = -0x10003  # data frames that carry none (null function, QoS null)
NETLINK = -0x10004
NFLOG_OTHER = -0x10005  # an NFLOG record whose address family is neither IPv4 nor IPv6
LINK_NON_IP = {
    WLAN_MANAGEMENT: "802.11 management",
    WLAN_CONTROL: "802.11 control",
    WLAN_NO_DATA: "802.11 data frame without data",
    NETLINK: "netlink",
    NFLOG_OTHER: "NFLOG, not IP",
}

# Row kinds
PACKET = 0  # an ordinary packet of its flow
ICMP_ERROR = 1  # an ICMP error; the row carries the *quoted* flow's addresses and ports

# Encapsulations (the tunnel a row was found inside; 0 = not tunnelled)
ENCAPS = {0: "", 1: "ipip", 2: "gre", 3: "vxlan", 4: "geneve", 5: "erspan", 6: "teredo"}

# Fragments. Later fragments (LATER and LAST) carry no transport header; once
# reassembly tracking has given one its datagram's ports it becomes JOINED: its
# bytes count in the flow, the datagram itself is counted once (at its first).
NOT_FRAGMENT, FIRST_FRAGMENT, LATER_FRAGMENT, LAST_FRAGMENT, JOINED_FRAGMENT = 0, 1, 2, 3, 4


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
    # bool, or None when none is: frames whose record has no time of its own (pcapng
    # simple packet blocks), given the time of the packet before.
    ts_carried: np.ndarray | None = None
    # bool, or None when none is: frames whose recorded time is out of range (before
    # 1970, past 2262, or a clock that overflows), given the time of the packet before.
    ts_unknown: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frame)

    def take(self, index: np.ndarray) -> RawBatch:
        """Some of the frames (the chunk they are in stays shared)."""
        per_frame = {k: v[index] for k, v in vars(self).items() if k != "data" and v is not None}
        return RawBatch(data=self.data, **per_frame)


@dataclass
class PacketBatch:
    """Decoded packet rows, all columns of equal length."""

    frame: np.ndarray  # int64, frame number in its file
    ts: np.ndarray  # int64 ns
    iface: np.ndarray  # int32
    wirelen: np.ndarray  # int64: bytes of the frame on the wire
    vlan: np.ndarray  # int32: outer VLAN id, -1 when untagged
    encap: np.ndarray  # uint8: ENCAPS code
    src_hi: np.ndarray  # uint64: addresses as IPv6 integers (IPv4-mapped)
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    proto: np.ndarray  # int32: IP protocol (6 tcp, 17 udp, 1 icmp, 58 icmpv6, 132 sctp, ...)
    sport: np.ndarray  # int32: transport ports; 0 where the protocol has none
    dport: np.ndarray
    tcp_flags: np.ndarray  # int32; 0 when not TCP or not captured
    tcp_seq: np.ndarray  # int64: sequence number of TCP SYNs (-1 for other packets)
    icmp_type: np.ndarray  # int32; -1 when not ICMP
    icmp_code: np.ndarray  # int32
    icmp_req: np.ndarray  # int32: ICMP flows only, the query type the flow pairs on
    # (8 for echo request/reply, ...), else -1. For ICMP queries sport = dport = identifier.
    kind: np.ndarray  # uint8: PACKET or ICMP_ERROR
    frag: np.ndarray  # uint8: NOT_FRAGMENT, FIRST_FRAGMENT, LATER_ or LAST_FRAGMENT, JOINED_
    frag_id: np.ndarray  # int64: fragments' IP identification (v4) or fragment id (v6)
    frag_off: np.ndarray  # int32: fragments only, where their data sits in the datagram
    frag_len: np.ndarray  # int32: ... and its length (as the IP header says, not as captured)
    # int64 (rows, 4), or None: where the compiled decoder found each TCP or UDP
    # row's payload while its headers were in cache (transport header, payload
    # start and stop in the raw batch's buffer, first 8 bytes as a big-endian
    # integer); -1 first where it did not (`decode.payload` finds those itself).
    located: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frame)

    def take(self, index: np.ndarray) -> PacketBatch:
        return PacketBatch(
            **{
                f.name: None if (v := getattr(self, f.name)) is None else v[index]
                for f in fields(self)
            }
        )

    def concat(self, other: PacketBatch) -> PacketBatch:
        columns = {
            f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
            for f in fields(self)
            if f.name != "located"
        }
        if self.located is not None or other.located is not None:
            columns["located"] = np.concatenate([_located(self), _located(other)])
        return PacketBatch(**columns)

    @classmethod
    def empty(cls) -> PacketBatch:
        kinds = {
            "src_hi": np.uint64,
            "src_lo": np.uint64,
            "dst_hi": np.uint64,
            "dst_lo": np.uint64,
            "kind": np.uint8,
            "frag": np.uint8,
            "frag_off": np.int32,
            "frag_len": np.int32,
            "encap": np.uint8,
        }
        return cls(
            **{
                f.name: np.zeros(0, dtype=kinds.get(f.name, np.int64))
                for f in fields(cls)
                if f.name != "located"
            }
        )


def _located(rows: PacketBatch) -> np.ndarray:
    """`rows.located`, or "not found" for every row when there is none."""
    if rows.located is not None:
        return rows.located
    unknown = np.zeros((len(rows), 4), np.int64)
    unknown[:, 0] = -1
    return unknown


@dataclass
class DecodeCounts:
    """How many frames landed in each bucket; the buckets add up to `frames`."""

    frames: int = 0
    ip: int = 0
    non_ip: dict[int, int] | None = None  # ethertype (or -1 unknown) -> frames
    unsupported: dict[int, int] | None = None  # link type -> frames
    undecodable: dict[str, int] | None = None  # reason -> frames
    l4_truncated: int = 0  # IP frames whose TCP flags were cut off by the snaplen
    inner_undecodable: int = 0  # tunnelled packets that could not be decoded (outer was)
    inner_too_deep: int = 0  # ... of them, those past a depth limit (MAX_TUNNELS, ...)
    ts_carried: int = 0  # frames without a time of their own: given the one before's
    ts_out_of_range: int = 0  # frames whose time is out of range: given the one before's

    def __post_init__(self) -> None:
        self.non_ip = self.non_ip or {}
        self.unsupported = self.unsupported or {}
        self.undecodable = self.undecodable or {}

    def add(self, other: DecodeCounts) -> None:
        self.frames += other.frames
        self.ip += other.ip
        self.l4_truncated += other.l4_truncated
        self.inner_undecodable += other.inner_undecodable
        self.inner_too_deep += other.inner_too_deep
        self.ts_carried += other.ts_carried
        self.ts_out_of_range += other.ts_out_of_range
        for mine, theirs in (
            (self.non_ip, other.non_ip),
            (self.unsupported, other.unsupported),
            (self.undecodable, other.undecodable),
        ):
            for key, value in theirs.items():
                mine[key] = mine.get(key, 0) + value

    def check(self) -> None:
        total = (
            self.ip
            + sum(self.non_ip.values())
            + sum(self.unsupported.values())
            + sum(self.undecodable.values())
        )
        if total != self.frames:  # a bug in the decoder, never bad input
            raise RuntimeError(f"decode buckets add up to {total}, not {self.frames}")
