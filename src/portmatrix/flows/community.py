"""Community ID v1 of flows (https://github.com/corelight/community-id-spec): the
flow hash Zeek, Suricata, Arkime and Elastic share (`network.community_id`),
so an analyst can pivot from a portmatrix finding to the same flow elsewhere.

The tuples are packed for all flows at once with numpy; only the SHA-1 of each
packed row is a step per flow (hashlib has no batch form). Checked against the
reference implementation (the `communityid` package) in the tests.
"""

from __future__ import annotations

import base64
import hashlib

import numpy as np

from portmatrix.addresses import V4_MAPPED
from portmatrix.flows.model import Flows

SEED = 0
PORTED = (6, 17, 132)  # tcp, udp, sctp
ICMP, ICMPV6 = 1, 58
# Zeek's ICMP request/response pairs: the answer's type stands in for the
# destination port, and such a pair is ordered like ports; other types are one way.
ICMP_PAIRS = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
ICMPV6_PAIRS = {
    128: 129,
    129: 128,
    130: 131,
    131: 130,
    133: 134,
    134: 133,
    135: 136,
    136: 135,
    139: 140,
    140: 139,
    144: 145,
    145: 144,
}


def _pair_table(pairs: dict[int, int]) -> np.ndarray:
    table = np.full(256, -1, np.int64)
    for k, v in pairs.items():
        table[k] = v
    return table


_ICMP, _ICMPV6 = _pair_table(ICMP_PAIRS), _pair_table(ICMPV6_PAIRS)


def community_ids(flows: Flows) -> list[str]:
    """ "1:<base64 SHA-1>" per flow, initiator as source; "" where the flow has no
    tuple to hash (an ICMP flow whose type is unknown)."""
    n = len(flows)
    if not n:
        return []
    proto = flows["proto"].astype(np.int64)
    sport, dport = flows["init_port"].astype(np.int64), flows["resp_port"].astype(np.int64)
    one_way = np.zeros(n, bool)
    icmp = (proto == ICMP) | (proto == ICMPV6)
    mtype = np.clip(flows["icmp_req"], 0, 255)
    answer = np.where(proto == ICMPV6, _ICMPV6[mtype], _ICMP[mtype])
    sport = np.where(icmp, mtype, sport)
    dport = np.where(icmp, np.where(answer >= 0, answer, 0), dport)  # the code: 0 for queries
    one_way |= icmp & (answer < 0)
    ported = np.isin(proto, PORTED) | icmp
    valid = ~icmp | (flows["icmp_req"] >= 0)
    ihi, ilo, rhi, rlo = (flows[c] for c in ("init_hi", "init_lo", "resp_hi", "resp_lo"))
    # Ordered: the smaller (address, port) first, unless one way.
    smaller = (ihi < rhi) | ((ihi == rhi) & (ilo < rlo))
    same = (ihi == rhi) & (ilo == rlo)
    keep = one_way | smaller | (same & ported & (sport < dport))
    a_hi, a_lo = np.where(keep, ihi, rhi), np.where(keep, ilo, rlo)
    b_hi, b_lo = np.where(keep, rhi, ihi), np.where(keep, rlo, ilo)
    a_port, b_port = np.where(keep, sport, dport), np.where(keep, dport, sport)
    v4 = (a_hi == 0) & ((a_lo >> np.uint64(32)) == np.uint64(V4_MAPPED >> 32))
    out = [""] * n
    for family, rows in ((4, np.flatnonzero(v4 & valid)), (16, np.flatnonzero(~v4 & valid))):
        for with_ports in (True, False):
            at = rows[ported[rows] == with_ports]
            if not len(at):
                continue
            cols = [np.full(len(at), SEED, ">u2")]
            for hi, lo in ((a_hi, a_lo), (b_hi, b_lo)):
                if family == 16:
                    cols.append(hi[at].astype(">u8"))
                    cols.append(lo[at].astype(">u8"))
                else:
                    cols.append((lo[at] & np.uint64(0xFFFFFFFF)).astype(">u4"))
            cols += [proto[at].astype("u1"), np.zeros(len(at), "u1")]
            if with_ports:
                cols += [a_port[at].astype(">u2"), b_port[at].astype(">u2")]
            packed = np.concatenate([c.view(np.uint8).reshape(len(at), -1) for c in cols], 1)
            width = packed.shape[1]
            raw = packed.tobytes()
            sha1, b64 = hashlib.sha1, base64.b64encode
            texts = [
                "1:" + b64(sha1(raw[i : i + width]).digest()).decode()
                for i in range(0, len(raw), width)
            ]
            for i, text in zip(at.tolist(), texts, strict=True):
                out[i] = text
    return out
