"""Flow keys: both directions are one flow, other ports are not; VLANs are not in the key."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP, UDP

from portmatrix.testing.captures import (
    ether,
    flow_dicts,
    flows_of,
    tcp_session,
)
from support.flow_rows import C, S, flows, only

# Keys --------------------------------------------------------------------------


def test_both_directions_are_one_flow_and_other_ports_are_not():
    packets = [
        IP(src=C, dst=S) / UDP(sport=50000, dport=53),
        IP(src=S, dst=C) / UDP(sport=53, dport=50000),
        IP(src=C, dst=S) / UDP(sport=50001, dport=53),
        IP(src=C, dst=S) / TCP(sport=50000, dport=53, flags="S"),
        IP(src=C, dst="10.0.0.3") / UDP(sport=50000, dport=53),
    ]
    assert len(flows(packets)) == 4


def test_vlan_is_not_in_the_key():
    # One connection mirrored from two tagged links: every packet twice.
    packets = tcp_session(C, S, 40000, 80)
    doubled = []
    for p in packets:
        doubled += [ether(p, vlans=[20]), ether(p, vlans=[10])]
    f = only(flow_dicts(flows_of(doubled)))
    assert f["vlan"] == "10,20"
    assert (f["packets_fwd"], f["packets_rev"]) == (10, 6)
    assert (f["outcome"], f["initiator_by"], f["close"]) == ("established", "syn", "fin")


def test_one_vlan_and_untagged():
    packets = [ether(p, vlans=[7] if i % 2 else []) for i, p in enumerate(tcp_session(C, S, 1, 2))]
    f = only(flow_dicts(flows_of(packets)))
    assert f["vlan"] == "7"
