"""Traffic a flow-record source never logs, and the required rules that therefore
cannot be judged from it: their coverage says `not-observable`, never missing.

AWS VPC Flow Logs do not log traffic to the Amazon DNS server, the instance
metadata service, Amazon Time Sync, Windows license activation, nor DHCP
(AWS's "Flow log limitations"). A required rule whose responders all sit at
those addresses (or that is DHCP) would always look missing in them. The
Amazon DNS server's address inside a VPC (its base + 2) and the VPC router's
(base + 1) depend on the VPC: name them in the inventory with the link-local
169.254.169.253, or expect `missing-required` for them.

Azure and GCP do not document such a list precisely enough to rely on: nothing
is marked for them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from portmatrix.addresses import to_int

_AWS_ADDRESSES = (
    "169.254.169.254",  # instance metadata
    "fd00:ec2::254",
    "169.254.169.253",  # Amazon DNS (Route 53 Resolver)
    "fd00:ec2::253",
    "169.254.169.123",  # Amazon Time Sync
    "fd00:ec2::123",
    "169.254.169.250",  # Windows license activation (KMS)
    "169.254.169.251",
)
_AWS = (
    frozenset(to_int(ipaddress.ip_address(a)) for a in _AWS_ADDRESSES),
    frozenset({("udp", 67), ("udp", 68), ("udp", 546), ("udp", 547)}),  # DHCP, DHCPv6
)
UNLOGGED = {"aws-vpc": _AWS, "aws-vpc-parquet": _AWS}
"""Per CaptureInfo.format: (addresses never logged, (proto, port) never logged)."""


def not_observable(coverage: list, findings: list, matrix, role_map, captures) -> tuple:
    """Coverage and coverage findings with every required rule that the flow-record
    inputs cannot see marked `not-observable` (its missing-required finding gone)."""
    kinds = [c.format.split("+")[0] for c in captures]
    sources = [UNLOGGED[k] for k in kinds if k in UNLOGGED]
    if not sources or len(sources) < len(captures):
        return coverage, findings  # any input that logs everything can show the rule
    addresses = frozenset().union(*(s[0] for s in sources))
    ports = frozenset().union(*(s[1] for s in sources))
    hidden = {
        rule.id
        for rule in matrix.rules
        if rule.required and _unlogged(rule, addresses, ports, role_map)
    }
    coverage = [
        replace(c, status="not-observable")
        if c.rule in hidden and c.status == "missing-required"
        else c
        for c in coverage
    ]
    findings = [f for f in findings if not (f.rule in hidden and f.verdict == "missing-required")]
    return coverage, findings


def _unlogged(rule, addresses: frozenset[int], ports: frozenset, role_map) -> bool:
    """Does the source never log this rule's traffic: all its ports, or every
    address its responders hold?"""
    if rule.ports and all(
        _within(first, last, {p for _, p in ports}) for first, last in rule.ports
    ):
        return all(rule.proto == proto for proto, _ in ports)
    held = role_map.index.addresses_of(rule.to_role)
    return bool(held) and all(_within(first, last, addresses) for first, last in held)


def _within(first: int, last: int, values) -> bool:
    return last - first < 16 and all(v in values for v in range(first, last + 1))
