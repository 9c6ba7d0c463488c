"""Cluster traffic for the bundled ThoughtSpot matrix, built packet by packet with
scapy, for tests whose expected verdicts are known: every flow is planned
(protocol, client, server, port, start, outcome) and the plan is the oracle.

`SITE` is a six-node site; `allowed_flows` exercises every rule of a matrix
from hosts of its roles (both ways for `initiator: either`), spread over a
time window; `write_capture` turns a plan into a pcap.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from portmatrix.policy.matrix import Matrix
from portmatrix.testing.captures import T0, Frame, ether, ip, tcp_session, write_pcap

SECOND = 1_000_000_000

SITE = """\
roles:
  nodes: [10.20.0.11-10.20.0.16]
  ipmi: [10.20.1.11-10.20.1.16]
  admins: [10.30.0.0/28]
  users: [10.40.0.0/16]
  support: [203.0.113.0/28]
  smtp-relay: [10.50.0.25]
  ldap-server: [10.50.0.89]
  ntp-server: [10.50.0.123]
  nfs-server: [10.50.0.49]
  # the vendor fixes these by name (and egnyte's address); listing them here
  # lets a draft learnt without the vendor matrix name them too
  egnyte: [208.83.110.20]
  mixpanel: [198.51.100.40]
  monitoring-upload: [198.51.100.50, 198.51.100.51]
hosts:
  api.mixpanel.com: [198.51.100.40]
  je8b47jfif.execute-api.us-east-2.amazonaws.com: [198.51.100.50]
  s3.us-west-1.amazonaws.com: [198.51.100.51]
  s3-us-west-1.amazonaws.com: [198.51.100.51]
  s3.dualstack.us-west-1.amazonaws.com: [198.51.100.51]
"""

HOSTS = {
    "nodes": [f"10.20.0.{i}" for i in range(11, 17)],
    "ipmi": [f"10.20.1.{i}" for i in range(11, 17)],
    "admins": ["10.30.0.5", "10.30.0.6"],
    "users": ["10.40.1.7", "10.40.2.20", "10.40.3.9", "10.40.4.4", "10.40.8.1"],
    "support": ["203.0.113.5"],
    "smtp-relay": ["10.50.0.25"],
    "ldap-server": ["10.50.0.89"],
    "ntp-server": ["10.50.0.123"],
    "nfs-server": ["10.50.0.49"],
    "egnyte": ["208.83.110.20"],
    "mixpanel": ["198.51.100.40"],
    "monitoring-upload": ["198.51.100.50", "198.51.100.51"],
}


@dataclass(frozen=True)
class Flow:
    proto: str  # tcp | udp | icmp
    client: str
    server: str
    port: int  # ICMP: the request type
    start: int  # ns since the epoch
    outcome: str = "established"  # established | refused | unanswered


def write_site(folder: Path) -> Path:
    path = Path(folder) / "site.yaml"
    path.write_text(SITE, encoding="utf-8")
    return path


def allowed_flows(
    matrix: Matrix,
    seed: int,
    *,
    seconds: int = 600,
    per_rule: int = 3,
    pool_flows: int = 60,
    skip: tuple[str, ...] = (),
) -> list[Flow]:
    """Flows every rule of `matrix` allows (except `skip`), from random hosts of its
    roles: `per_rule` per port of a rule (either way for `initiator: either`),
    `pool_flows` over a range of ports (both ends and random ports between),
    spread over `seconds`."""
    rnd = random.Random(seed)
    out = []

    def at() -> int:
        return T0 + rnd.randrange(seconds * 1000) * 1_000_000

    for rule in matrix.rules:
        if rule.id in skip:
            continue
        sides = [(rule.from_role, rule.to_role)]
        if rule.initiator == "either" and rule.from_role != rule.to_role:
            sides.append((rule.to_role, rule.from_role))
        if rule.proto == "icmp":
            ports = [8] * per_rule
        else:
            ports = []
            for lo, hi in rule.ports:
                if lo == hi:
                    ports += [lo] * per_rule
                else:
                    ports += [lo, hi] + [rnd.randint(lo, hi) for _ in range(pool_flows - 2)]
        for port in ports:
            a, b = rnd.choice(sides)
            client, server = rnd.choice(HOSTS[a]), rnd.choice(HOSTS[b])
            while server == client:
                server = rnd.choice(HOSTS[b])
            out.append(Flow(rule.proto, client, server, port, at()))
    return out


def _frames(flow: Flow, sport: int) -> list[Frame]:
    """The packets of one flow, 1 ms apart from its start."""
    from scapy.layers.inet import ICMP, TCP, UDP

    c, s = flow.client, flow.server
    if flow.proto == "tcp":
        if flow.outcome == "established":
            packets = tcp_session(c, s, sport, flow.port, isn=sport * 7, server_isn=sport * 3)
        elif flow.outcome == "refused":
            packets = [
                ip(c, s) / TCP(sport=sport, dport=flow.port, flags="S", seq=1),
                ip(s, c) / TCP(sport=flow.port, dport=sport, flags="RA", seq=0, ack=2),
            ]
        else:
            packets = [ip(c, s) / TCP(sport=sport, dport=flow.port, flags="S", seq=1)]
    elif flow.proto == "udp":
        packets = [ip(c, s) / UDP(sport=sport, dport=flow.port) / b"request"]
        if flow.outcome == "established":
            packets.append(ip(s, c) / UDP(sport=flow.port, dport=sport) / b"reply")
    else:
        packets = [ip(c, s) / ICMP(type=flow.port, id=sport, seq=1)]
        if flow.outcome == "established":
            packets.append(ip(s, c) / ICMP(type=0, id=sport, seq=1))
    return [Frame(bytes(ether(p)), ts=flow.start + i * 1_000_000) for i, p in enumerate(packets)]


def write_capture(path: Path, flows: list[Flow], seed: int = 0) -> Path:
    """A pcap of `flows` in time order (each with its own client port)."""
    rnd = random.Random(seed)
    frames = []
    ports = rnd.sample(range(33000, 61000), len(flows))
    for flow, sport in zip(flows, ports, strict=True):
        frames += _frames(flow, sport)
    frames.sort(key=lambda f: f.ts)
    return write_pcap(path, frames)
