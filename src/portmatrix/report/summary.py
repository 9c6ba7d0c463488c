"""Shared pieces of every report: the inputs and the decode buckets."""

from __future__ import annotations

from portmatrix.decode.batch import LINK_NON_IP, DecodeCounts

LINKTYPE_NAMES = {
    0: "NULL",
    1: "EN10MB",
    9: "PPP",
    12: "RAW",
    101: "RAW",
    105: "IEEE802_11",
    113: "LINUX_SLL",
    127: "IEEE802_11_RADIOTAP",
    147: "USER0",
    195: "802_15_4",
    228: "IPV4",
    229: "IPV6",
    253: "NETLINK",
    276: "LINUX_SLL2",
}
ETHERTYPE_NAMES = {
    0x0806: "ARP",
    0x8035: "RARP",
    0x88CC: "LLDP",
    0x888E: "EAPOL",
    0x8809: "LACP",
    0x88E5: "MACsec",
    0x9000: "loopback",
    0x88F7: "PTP",
    0x8863: "PPPoE discovery",
    -1: "LLC/802.3",
}


def _ethertype(value: int) -> str:
    if value in ETHERTYPE_NAMES or value in LINK_NON_IP:
        return ETHERTYPE_NAMES.get(value) or LINK_NON_IP[value]
    return f"PPP 0x{-value:04x}" if value < -1 else f"0x{value:04x}"


def decode_document(counts: DecodeCounts) -> dict:
    """The decode buckets: they add up to `frames`."""
    return {
        "frames": counts.frames,
        "ip": counts.ip,
        "non_ip": {_ethertype(k): v for k, v in sorted(counts.non_ip.items())},
        "unsupported_link_type": {
            f"{k} {LINKTYPE_NAMES.get(k, '')}".strip(): v
            for k, v in sorted(counts.unsupported.items())
        },
        "undecodable": dict(sorted(counts.undecodable.items())),
        "tcp_flags_cut_by_snaplen": counts.l4_truncated,
        "tunnelled_undecodable": counts.inner_undecodable,
        "tunnelled_too_deep": counts.inner_too_deep,
        "timestamps_carried": counts.ts_carried,
        "timestamps_out_of_range": counts.ts_out_of_range,
    }


def decode_summary(counts: DecodeCounts) -> list[str]:
    """The decode buckets in a few lines for text reports."""
    doc = decode_document(counts)
    lines = [f"decoded IP: {doc['ip']}"]

    def detail(d: dict) -> str:
        return ", ".join(f"{k} {v}" for k, v in d.items())

    non_ip = sum(doc["non_ip"].values())
    lines.append(f"non-IP: {non_ip}" + (f" ({detail(doc['non_ip'])})" if non_ip else ""))
    unsupported = sum(doc["unsupported_link_type"].values())
    lines.append(
        f"unsupported link type: {unsupported}"
        + (f" ({detail(doc['unsupported_link_type'])})" if unsupported else "")
    )
    bad = sum(doc["undecodable"].values())
    lines.append(f"undecodable: {bad}" + (f" ({detail(doc['undecodable'])})" if bad else ""))
    if counts.ts_carried:
        lines.append(
            f"without a timestamp: {counts.ts_carried} (pcapng simple packet blocks: "
            "given the time of the packet before)"
        )
    if counts.ts_out_of_range:
        lines.append(
            f"time out of range: {counts.ts_out_of_range} (before 1970, after 2262 or a "
            "clock that overflows: given the time of the packet before)"
        )
    return lines


def inputs_summary(traffic) -> list[dict]:
    out = []
    for cap in traffic.captures:
        out.append(
            {
                "path": cap.path,
                "format": cap.format,
                "size": cap.size,
                "sha256": cap.sha256,
                "frames": cap.frames,
                "truncated": cap.truncated or None,
                "unreadable": str(cap.unreadable) if cap.unreadable is not None else None,
                "drops": cap.drops,
                "dns_names": len(cap.dns),
                "client_names": {
                    "seen": dict(cap.names.seen),
                    "damaged": dict(cap.names.damaged),
                    "cut": dict(cap.names.cut),
                },
                "interfaces": [{"name": i.name, "link_type": i.linktype} for i in cap.interfaces],
            }
        )
    return out


def made_by(doc: dict) -> str:
    """Which command made a report (`check` or `watch`), from its command line: the
    first word after `portmatrix` that is no option; `check` when none is known."""
    words = (doc.get("report") or {}).get("command") or []
    command = next((w for w in words[1:] if not w.startswith("-")), "check")
    return command if command in ("check", "watch") else "check"
