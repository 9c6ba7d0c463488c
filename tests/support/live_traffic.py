"""Traffic over time, for the tests of watching: on the small site
(support/site.py), a required service (node-rpc, tcp/7000) that stops half way
and comes back, while another (node-gossip, udp/7946) goes on all along."""

from __future__ import annotations

from portmatrix.testing.captures import T0, Frame, ether, frames, tcp_session
from support.packets import refused, udp
from support.site import N1, N2

SECOND = 1_000_000_000


def second_of_traffic(t: int, rpc: str, start: int = T0) -> list[Frame]:
    """The frames of second `t`: a gossip exchange, and an RPC session ("ok"), a
    refused RPC attempt ("refused") or none ("none")."""
    packets = [udp(N1, N2, 7946, 7946), udp(N2, N1, 7946, 7946)]
    if rpc == "ok":
        packets += tcp_session(N1, N2, 40000 + t, 7000)
    elif rpc == "refused":
        packets += refused(N1, N2, 40000 + t, 7000)
    return frames([ether(p) for p in packets], start=start + t * SECOND)


def service_stops(
    seconds: int, gap: tuple[int, int], during_gap: str = "none", start: int = T0
) -> list[list[Frame]]:
    """Per second, its frames: RPC established every second but in `gap` (a
    half-open range of seconds), where it is `during_gap` ("none" or "refused")."""
    return [
        second_of_traffic(t, during_gap if gap[0] <= t < gap[1] else "ok", start)
        for t in range(seconds)
    ]
