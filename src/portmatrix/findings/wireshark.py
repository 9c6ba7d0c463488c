"""Wireshark display filters that isolate a finding's flows (tshark -Y, Wireshark's
filter bar)."""

from __future__ import annotations


def wireshark_filter(proto: str, init: str, resp: str, port: int | None) -> str:
    """A display filter for the flows initiator -> responder:port (and their replies).

    With ports it is directional, so flows between the same two hosts on the same
    port the other way round (often allowed: an admin's SSH to a node beside a
    node's SSH to the admin) are not selected. An ICMP error quoting a flow's
    packet still matches: tshark looks into the quoted headers too."""
    ip_ = "ipv6" if ":" in init else "ip"
    field_ = f"{ip_}.addr"
    if proto in ("tcp", "udp", "sctp") and port is not None:
        return (
            f"({ip_}.src=={init} && {ip_}.dst=={resp} && {proto}.dstport=={port}) || "
            f"({ip_}.src=={resp} && {ip_}.dst=={init} && {proto}.srcport=={port})"
        )
    parts = [f"{field_}=={init}", f"{field_}=={resp}"]
    if proto in ("icmp", "icmpv6"):
        parts.append(proto)
    elif proto.isdigit():
        parts.append(f"ip.proto=={proto}" if field_ == "ip.addr" else f"ipv6.nxt=={proto}")
    return " && ".join(parts)
