"""classify: one verdict per flow from the small matrix of support.site,
how sure the initiator is, and whether the responder answered or the attempt failed."""

from __future__ import annotations

import datetime as dt

import pytest
from scapy.layers.inet import ICMP, TCP, UDP, IPerror
from scapy.layers.inet6 import ICMPv6DestUnreach

from portmatrix.flows.model import BLOCKED
from portmatrix.policy.classify import classify
from portmatrix.policy.inventory import load_inventory
from portmatrix.policy.lookup import VERDICTS, RuleIndex
from portmatrix.policy.matrix import load_matrix
from portmatrix.policy.roles import build_role_map
from portmatrix.testing.captures import ether, flow_dicts, flows_of, ip, tcp_session
from support.site import ADMIN, ADMIN_6, BACKUP, N1, N1_6, N2, N2_6, OUT1, OUT2, USER

BEFORE_EXPIRY = dt.date(2025, 1, 1)  # backup-ssh active, old-snmp expired


@pytest.fixture
def classified(site):
    """`classified(packets, exceptions=False, today=BEFORE_EXPIRY)`: (flow rows,
    Classified) of these IP packets against the small site."""
    small = site()

    def run(packets, *, exceptions=False, today=BEFORE_EXPIRY):
        rules = [str(small.matrix)] + ([str(small.exceptions)] if exceptions else [])
        matrix = load_matrix(rules)
        role_map = build_role_map(matrix, load_inventory(str(small.inventory), matrix))
        flows = flows_of([ether(p) for p in packets])
        return flow_dicts(flows), classify(flows, RuleIndex(matrix, today), role_map)

    return run


def at(rows, initiator, responder_port):
    """Index of the one flow opened by `initiator` towards `responder_port`."""
    found = [
        i
        for i, r in enumerate(rows)
        if r["initiator"] == initiator and r["responder_port"] == responder_port
    ]
    assert len(found) == 1, (initiator, responder_port, rows)
    return found[0]


def syn(src, dst, sport, dport):
    return ip(src, dst) / TCP(sport=sport, dport=dport, flags="S", seq=1000)


def rst_ack(src, dst, sport, dport):
    return ip(src, dst) / TCP(sport=sport, dport=dport, flags="RA", seq=0, ack=1001)


def echo(src, dst, ident, reply=True):
    out = [ip(src, dst) / ICMP(type=8, id=ident, seq=1)]
    if reply:
        out.append(ip(dst, src) / ICMP(type=0, id=ident, seq=1))
    return out


# Verdicts ---------------------------------------------------------------------

VERDICT_CASES = [
    # (initiator, responder, port, verdict, rule, related)
    (USER, N1, 443, "allowed", "https-from-users", ()),
    (N2, N1, 7000, "allowed", "node-rpc", ()),  # `initiator: either`, this way round
    (ADMIN_6, N1_6, 22, "allowed", "ssh-from-admins", ()),
    (N1, ADMIN, 22, "wrong-direction", "ssh-from-admins", ()),
    (USER, N2, 22, "unexpected-source", "", ("ssh-from-admins",)),
    (OUT1, N1, 7000, "unexpected-source", "", ("node-rpc",)),  # no role facing a role
    (USER, N1, 8443, "unexpected-port", "", ()),
    (N1_6, ADMIN_6, 8443, "unexpected-port", "", ()),
    (OUT1, OUT2, 80, "out-of-scope", "", ()),
]


def test_each_verdict(classified):
    packets = []
    for k, (client, server, port, *_) in enumerate(VERDICT_CASES):
        packets += tcp_session(client, server, 40000 + k, port)
    packets += echo(N1, N2, 0x71)
    rows, cls = classified(packets)
    assert len(rows) == len(VERDICT_CASES) + 1
    for client, _server, port, verdict, rule, related in VERDICT_CASES:
        i = at(rows, client, port)
        decision = cls.decisions[cls.decision[i]]
        assert (VERDICTS[cls.verdict[i]], decision.verdict) == (verdict, verdict), (client, port)
        assert (decision.rule, decision.related) == (rule, related), (client, port)
    ping = at(rows, N1, 0)
    assert rows[ping]["proto"] == "icmp"
    assert cls.decisions[cls.decision[ping]].rule == "node-ping"
    assert cls.counts() == {
        "allowed": 4,
        "wrong-direction": 1,
        "unexpected-source": 2,
        "unexpected-port": 2,
        "out-of-scope": 1,
    }


def test_no_flows():
    from portmatrix.testing.captures import flows_of as build

    flows = build([])
    matrix = load_matrix(["thoughtspot"])
    cls = classify(flows, RuleIndex(matrix), build_role_map(matrix, None))
    assert len(cls.verdict) == 0
    assert sum(cls.counts().values()) == 0


# How sure the initiator is ----------------------------------------------------


def test_heuristic_only_for_midstream_tcp(classified):
    midstream = tcp_session(USER, N1, 50000, 8443, handshake=False, close="open")
    both_ephemeral = tcp_session(USER, N2, 50001, 50002, handshake=False, close="open")
    syn_initiated = tcp_session(USER, N1, 40000, 443)
    syn_ack_only = tcp_session(N1, ADMIN, 40001, 22)[1:]  # the capture starts at SYN-ACK
    udp_request = [ip(N1, ADMIN) / UDP(sport=40002, dport=514) / b"log"]
    packets = midstream + both_ephemeral + syn_initiated + syn_ack_only + udp_request
    rows, cls = classified(packets)
    by = {(r["initiator_port"], r["responder_port"]): r["initiator_by"] for r in rows}
    guessed = {
        (r["initiator_port"], r["responder_port"]) for i, r in enumerate(rows) if cls.heuristic[i]
    }
    assert by[(50000, 8443)] == "port"
    assert by[(40000, 443)] == "syn"
    assert by[(40001, 22)] == "syn-ack"
    assert by[(40002, 514)] == "first-packet"
    # The mid-stream flows are guesses (port heuristic, or first packet of TCP);
    # nothing that saw a SYN or a SYN-ACK is, nor a UDP request.
    assert {by[k] for k in guessed} <= {"port", "first-packet"}
    assert guessed == {k for k in by if k[0] >= 50000 or k[1] >= 50000}
    assert len(guessed) == 2


# Answered and failed ----------------------------------------------------------


def test_answered_and_failed(classified):
    probe = ip(USER, N2) / UDP(sport=40007, dport=161) / b"get"
    probe6 = ip(N2_6, N1_6) / UDP(sport=40008, dport=7946) / b"ping"
    packets = [
        *tcp_session(USER, N1, 40000, 443),  # established
        syn(USER, N1, 40001, 8443),
        rst_ack(N1, USER, 8443, 40001),  # refused by RST
        syn(N1, N2, 40002, 7000),  # unanswered SYN
        ip(N1, ADMIN) / UDP(sport=40003, dport=514) / b"log",  # UDP, no reply
        ip(N1, N2) / UDP(sport=40004, dport=7946) / b"ping",
        ip(N2, N1) / UDP(sport=7946, dport=40004) / b"pong",  # UDP answered
        probe,
        ip(N2, USER) / ICMP(type=3, code=3) / IPerror(bytes(probe)[:28]),  # UDP refused
        probe6,
        ip(N1_6, N2_6) / ICMPv6DestUnreach(code=4) / bytes(probe6),
        *echo(N1, N2, 0x11),  # echo answered
        *echo(N2, N1, 0x12, reply=False),  # echo unanswered
        *tcp_session(USER, N2, 50000, 9443, handshake=False, close="open"),  # midstream
    ]
    rows, cls = classified(packets)
    expected = {
        # (initiator, responder port): (outcome, answered, failed)
        (USER, 443): ("established", True, False),
        (USER, 8443): ("refused", False, True),
        (N1, 7000): ("unanswered", False, True),
        (N1, 514): ("unanswered", False, False),  # UDP silence proves nothing
        (N1, 7946): ("established", True, False),
        (USER, 161): ("refused", False, True),  # ICMP port unreachable
        (N2_6, 7946): ("refused", False, True),  # ICMPv6 port unreachable
        (N1, 0): ("established", True, False),
        (N2, 0): ("unanswered", False, True),
    }
    for (initiator, port), (outcome, answered, failed) in expected.items():
        i = at(rows, initiator, port)
        got = (rows[i]["outcome"], bool(cls.answered[i]), bool(cls.failed[i]))
        assert got == (outcome, answered, failed), (initiator, port)
    mid = [i for i, r in enumerate(rows) if r["outcome"] == "midstream"]
    assert len(mid) == 1
    assert (bool(cls.answered[mid[0]]), bool(cls.failed[mid[0]])) == (True, False)
    assert len(rows) == len(expected) + 1


def test_blocked_is_a_failed_attempt_even_for_udp(site):
    """A flow record saying a security group dropped it (AWS REJECT, Azure D) is
    a failed attempt like a refusal, where UDP silence alone is not."""
    small = site()
    matrix = load_matrix([str(small.matrix)])
    role_map = build_role_map(matrix, load_inventory(str(small.inventory), matrix))
    flows = flows_of(
        [ether(syn(USER, N1, 40001, 8443)), ether(ip(N1, ADMIN) / UDP(sport=40003, dport=514))]
    )
    flows.cols["outcome"][:] = BLOCKED
    cls = classify(flows, RuleIndex(matrix, BEFORE_EXPIRY), role_map)
    assert cls.failed.tolist() == [True, True] and not cls.answered.any()


def test_midstream_one_way_is_not_answered(classified):
    only_client = [
        p
        for p in tcp_session(USER, N1, 50000, 443, handshake=False, close="open")
        if p.dport == 443
    ]
    rows, cls = classified(only_client)
    assert [r["outcome"] for r in rows] == ["midstream"]
    assert (bool(cls.answered[0]), bool(cls.failed[0])) == (False, False)


# Exceptions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "verdict", "exception", "expired"),
    [
        (BEFORE_EXPIRY, "allowed", "backup-ssh", ()),
        (dt.date(2099, 1, 2), "unexpected-source", "", ("backup-ssh",)),
    ],
)
def test_exception_allows_until_it_expires(classified, today, verdict, exception, expired):
    packets = tcp_session(BACKUP, N2, 40000, 22) + tcp_session(BACKUP, N2, 40001, 23)
    rows, cls = classified(packets, exceptions=True, today=today)
    i = at(rows, BACKUP, 22)
    d = cls.decisions[cls.decision[i]]
    assert (VERDICTS[cls.verdict[i]], d.exception, d.expired) == (verdict, exception, expired)
    assert d.rule == ""  # an exception is not a rule: nothing in the matrix is covered
    assert d.covers == ()
    # The exception names tcp/22 only: the same host on another port is not allowed.
    j = at(rows, BACKUP, 23)
    assert VERDICTS[cls.verdict[j]] == "unexpected-port"
    assert cls.decisions[cls.decision[j]].exception == ""


def test_expired_exception_by_role(classified):
    packets = [ip(USER, N2) / UDP(sport=40000, dport=161) / b"get"]
    for today, verdict, exception, expired in (
        (dt.date(2019, 12, 31), "allowed", "old-snmp", ()),
        (BEFORE_EXPIRY, "unexpected-port", "", ("old-snmp",)),
    ):
        _, cls = classified(packets, exceptions=True, today=today)
        d = cls.decisions[cls.decision[0]]
        assert (VERDICTS[cls.verdict[0]], d.exception, d.expired) == (verdict, exception, expired)


def test_exception_addresses_are_no_role(classified):
    """10.0.9.9 holds only the exception's pseudo-role: towards a host with no
    role it is out of scope, not a finding."""
    _, cls = classified(tcp_session(BACKUP, OUT1, 40000, 22), exceptions=True, today=BEFORE_EXPIRY)
    assert VERDICTS[cls.verdict[0]] == "out-of-scope"


def test_sctp_is_matched_by_sctp_rules(tmp_path, write_yaml):
    """Protocol 132 does not fit a signed byte: it must still be SCTP (a regression)."""
    from scapy.layers.sctp import SCTP, SCTPChunkInit, SCTPChunkInitAck

    from portmatrix.check import run_check
    from portmatrix.testing.captures import ether, ip, write_pcap

    matrix = write_yaml(
        "m.yaml",
        """
        name: diameter
        roles: {a: A, b: B}
        rules:
          - {id: diameter, service: Diameter, proto: sctp, ports: 3868, from: a, to: b,
             required: true}
    """,
    )
    inventory = write_yaml("i.yaml", "roles: {a: [10.0.0.1], b: [10.0.0.2]}\n")
    packets = [
        ip("10.0.0.1", "10.0.0.2") / SCTP(sport=40000, dport=3868) / SCTPChunkInit(),
        ip("10.0.0.2", "10.0.0.1") / SCTP(sport=3868, dport=40000) / SCTPChunkInitAck(),
    ]
    path = write_pcap(tmp_path / "sctp.pcap", [ether(p) for p in packets])
    result = run_check([str(path)], [str(matrix)], str(inventory))
    assert result.verdict_counts()["allowed"] == 1
    assert [c.status for c in result.coverage] == ["ok"]
    assert result.findings == []
