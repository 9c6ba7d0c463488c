"""Transport headers: TCP/UDP/SCTP/DCCP/UDP-Lite ports, TCP flags, ICMP and
ICMPv6 type, code and echo identifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from portmatrix.decode import batch as b
from portmatrix.decode.fields import any_of, be16, be32, u8

TCP, UDP, ICMP, ICMPV6, SCTP, DCCP, UDPLITE = 6, 17, 1, 58, 132, 33, 136
PORTED = (TCP, UDP, SCTP, DCCP, UDPLITE)
# ICMP errors quote the header of the datagram they answer.
ICMP_ERRORS = {ICMP: (3, 4, 5, 11, 12), ICMPV6: (1, 2, 3, 4)}
# Echo-like queries pair with their replies by identifier (v4: echo, timestamp,
# information, address mask; v6: echo).
ICMP_QUERY_REPLY = {ICMP: {8: 0, 13: 14, 15: 16, 17: 18}, ICMPV6: {128: 129}}


@dataclass
class Transport:
    status: np.ndarray  # b.IP or b.TRUNC_TRANSPORT
    sport: np.ndarray
    dport: np.ndarray
    tcp_flags: np.ndarray
    tcp_seq: np.ndarray
    flags_cut: np.ndarray  # bool: TCP header cut before the flags
    icmp_type: np.ndarray
    icmp_code: np.ndarray
    icmp_id: np.ndarray


def transport(data, l4pos, l4end, proto, later_fragment) -> Transport:
    n = len(l4pos)
    out = Transport(
        status=np.full(n, b.IP, np.int8),
        sport=np.zeros(n, np.int64),
        dport=np.zeros(n, np.int64),
        tcp_flags=np.zeros(n, np.int64),
        tcp_seq=np.full(n, -1, np.int64),
        flags_cut=np.zeros(n, bool),
        icmp_type=np.full(n, -1, np.int64),
        icmp_code=np.full(n, -1, np.int64),
        icmp_id=np.full(n, -1, np.int64),
    )
    first = ~later_fragment
    ported = first & any_of(proto, PORTED)
    i = np.flatnonzero(ported)
    cut = l4pos[i] + 4 > l4end[i]
    out.status[i[cut]] = b.TRUNC_TRANSPORT
    i = i[~cut]
    out.sport[i] = be16(data, l4pos[i])
    out.dport[i] = be16(data, l4pos[i] + 2)
    t = i[proto[i] == TCP]
    has_flags = l4pos[t] + 14 <= l4end[t]
    out.tcp_flags[t[has_flags]] = u8(data, l4pos[t[has_flags]] + 13)
    out.flags_cut[t[~has_flags]] = True
    # The sequence number matters for SYNs only (a SYN repeating a closed
    # connection's ISN is a retransmission, not a new flow).
    seq = t[((out.tcp_flags[t] & 0x02) != 0) & (l4pos[t] + 8 <= l4end[t])]
    out.tcp_seq[seq] = be32(data, l4pos[seq] + 4)
    icmp = np.flatnonzero(first & any_of(proto, (ICMP, ICMPV6)))
    ok = l4pos[icmp] + 2 <= l4end[icmp]
    icmp = icmp[ok]
    out.icmp_type[icmp] = u8(data, l4pos[icmp])
    out.icmp_code[icmp] = u8(data, l4pos[icmp] + 1)
    queries = np.zeros(len(icmp), bool)
    for p, pairs in ICMP_QUERY_REPLY.items():
        kinds = list(pairs) + list(pairs.values())
        queries |= (proto[icmp] == p) & any_of(out.icmp_type[icmp], kinds)
    q = icmp[queries & (l4pos[icmp] + 6 <= l4end[icmp])]
    out.icmp_id[q] = be16(data, l4pos[q] + 4)
    return out


def is_icmp_error(proto: np.ndarray, icmp_type: np.ndarray) -> np.ndarray:
    out = np.zeros(len(proto), bool)
    for p, types in ICMP_ERRORS.items():
        out |= (proto == p) & any_of(icmp_type, types)
    return out
