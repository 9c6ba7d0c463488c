"""Findings in English: one sentence naming what happened, between whom, and the
rule involved; remarks for guessed initiators, silence and expired exceptions."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from portmatrix.findings.aggregate import Groups
from portmatrix.findings.model import Thresholds, stable_id
from portmatrix.findings.wording import Problem, finding_of
from portmatrix.policy.lookup import Decision, RuleIndex
from portmatrix.policy.matrix import load_matrix
from portmatrix.testing.captures import tcp_session
from support.packets import refused, syn, udp
from support.site import ADMIN, N1, N2, USER


def flow_findings(result):
    return [f for f in result.findings if f.kind == "flow"]


def test_messages_name_the_rule(check_packets):
    packets = (
        refused(N1, N2, 40000, 7000)
        + refused(ADMIN, N1, 40001, 22)
        + tcp_session(N1, ADMIN, 40002, 22)
        + tcp_session(USER, N2, 40003, 22)
    )
    by_port = {(f.initiator, f.port): f for f in flow_findings(check_packets(packets))}
    rpc = by_port[(N1, 7000)]
    assert "allowed by required rule node-rpc (RPC) but refused" in rpc.message
    assert rpc.rule == "node-rpc"
    ssh = by_port[(ADMIN, 22)]
    assert "allowed by rule ssh-from-admins (SSH) but refused" in ssh.message
    wrong = by_port[(N1, 22)]
    assert "the matrix allows only the other way: rule ssh-from-admins (admins → nodes)" in (
        wrong.message
    )
    assert (wrong.rule, wrong.initiator_roles, wrong.responder_roles) == (
        "ssh-from-admins",
        ["nodes"],
        ["admins"],
    )
    source = by_port[(USER, 22)]
    assert source.related_rules == ["ssh-from-admins"]
    assert "only allowed from other sources: ssh-from-admins" in source.message


def test_forbidden_silence_says_it_proves_nothing_only_where_it_does_not(check_packets):
    packets = [udp(USER, N1, 40000, 161), syn(USER, N1, 40001, 8443)]
    by_port = {f.port: f for f in flow_findings(check_packets(packets))}
    remark = "no reply, which does not show it was blocked"
    assert remark in by_port[161].message  # UDP: may have got through
    assert remark not in by_port[8443].message  # an unanswered SYN did not


@pytest.fixture
def index(matrix) -> RuleIndex:
    return RuleIndex(load_matrix([matrix("small")]), dt.date(2025, 1, 1))


def problem(index: RuleIndex, decision: Decision, **fields) -> Problem:
    """Two flows from one user to node 1 on tcp/8443, unless told otherwise."""
    proto, port = fields.pop("proto", 6), fields.pop("port", 8443)
    numbers = dict(
        rep=[0],
        members=[np.array([0, 3])],
        flows=[2],
        packets=[16],
        bytes=[1200],
        first=["2023-11-14T22:13:20.000000Z"],
        last=["2023-11-14T22:13:21.000000Z"],
        outcomes=[{"established": 2}],
        initiators=[1],
        responders=[1],
        initiator_hosts=[[USER]],
        responder_hosts=[[N1]],
        pairs=[[{"initiator": USER, "responder": N1, "flows": 2}]],
        frames=[["1", "9"]],
        community=[[]],
        ports=[[(proto, port, port)]],
        answered_ports=[[(proto, port, port)]],
    )
    numbers |= {k: [v] for k, v in fields.pop("groups", {}).items()}
    base = dict(
        kind="flow",
        verdict=decision.verdict,
        decision=decision,
        rule=index.matrix.rule(decision.rule) if decision.rule else None,
        proto_number=proto,
        port=port,
        i_roles=["users"],
        r_roles=["nodes"],
        many_sources=False,
        many_ports=False,
        severity=2,
        heuristic=False,
        silent=False,
        coverage=None,
        groups=Groups(**numbers),
        j=0,
        thresholds=Thresholds(),
        today=dt.date(2025, 1, 1),
    )
    return Problem(**{**base, **fields})


def test_a_forbidden_port_in_full(index):
    f = finding_of(problem(index, Decision("unexpected-port")))
    assert f.message == (
        f"{USER} (users) reached tcp/8443 on {N1} (nodes) (2 established); nothing in "
        "the matrix allows tcp/8443 towards nodes"
    )
    assert (f.kind, f.verdict, f.severity, f.rule) == ("flow", "unexpected-port", "error", None)
    assert (f.flows, f.packets, f.bytes, f.frames) == (2, 16, 1200, ["1", "9"])
    assert f.members.tolist() == [0, 3]
    assert f.filter.startswith(f"(ip.src=={USER} && ip.dst=={N1} && tcp.dstport==8443)")
    assert f.action.startswith("Block tcp/8443 from users to nodes, or if it is wanted")
    assert "id: site-users-to-nodes-tcp-8443" in f.suggestion


def test_outcomes_are_counted_unless_there_is_one_flow(index):
    once = finding_of(
        problem(index, Decision("unexpected-port"), groups={"outcomes": {"refused": 1}}, severity=0)
    )
    assert f"on {N1} (nodes) (refused);" in once.message
    assert once.suggestion is None  # blocked as the matrix wants: nothing to change
    mixed = problem(
        index, Decision("unexpected-port"), groups={"outcomes": {"refused": 2, "unanswered": 1}}
    )
    assert "(2 refused and 1 left unanswered);" in finding_of(mixed).message
    mid = problem(
        index, Decision("unexpected-port"), groups={"outcomes": {"midstream": 1}}, heuristic=True
    )
    message = finding_of(mid).message
    assert "(seen mid-stream);" in message
    assert message.endswith(" — initiator guessed from ports (handshake not captured)")


def test_roles_and_counts_when_several_hosts(index):
    f = finding_of(
        problem(
            index,
            Decision("unexpected-port"),
            groups={"initiators": 3, "initiator_hosts": ["10.0.2.7", "10.0.2.8", "10.0.2.9"]},
        )
    )
    assert f.message.startswith("users (3 hosts) reached tcp/8443 on 10.0.0.1 (nodes)")
    assert (f.initiator, f.initiators) == (None, 3)


def test_an_address_without_a_role(index):
    f = finding_of(
        problem(
            index,
            Decision("unexpected-port"),
            r_roles=[],
            groups={"responder_hosts": ["192.0.2.1"]},
        )
    )
    assert "on 192.0.2.1 (no role)" in f.message
    assert f.message.endswith("allows tcp/8443 towards an address with no role")
    assert "exceptions:" in f.suggestion and "192.0.2.1" in f.suggestion


def test_allowed_by_an_exception_names_it_and_never_a_required_rule(index):
    d = Decision("allowed", exception="backup-ssh")
    f = finding_of(problem(index, d, port=22, groups={"outcomes": {"refused": 1}}, severity=1))
    assert "is allowed by exception backup-ssh but refused" in f.message
    assert f.rule == "exception:backup-ssh"


def test_expired_exceptions_are_named_and_silence_remarked(index):
    d = Decision("unexpected-port", expired=("old-snmp",))
    p = problem(index, d, proto=17, port=161, groups={"outcomes": {"unanswered": 1}}, silent=True)
    f = finding_of(p)
    assert f.message.endswith(
        "(left unanswered); nothing in the matrix allows udp/161 towards nodes"
        " — no reply, which does not show it was blocked"
        "; expired exception old-snmp would have allowed it"
    )
    assert f.expired_exceptions == ["old-snmp"]
    # An allowed flow is never remarked on for silence: it did not need a reply.
    allowed = finding_of(problem(index, Decision("allowed", rule="syslog"), silent=True))
    assert "no reply" not in allowed.message


def test_a_protocol_without_ports_has_none(index):
    f = finding_of(problem(index, Decision("unexpected-port"), proto=47, port=0))
    assert f.port is None and f.ports is None
    assert f.filter == f"ip.addr=={USER} && ip.addr=={N1} && ip.proto==47"


def test_the_id_ignores_counts_times_and_hosts_of_the_roles(index):
    d = Decision("unexpected-port")
    a = finding_of(problem(index, d))
    b = finding_of(
        problem(
            index,
            d,
            groups={
                "flows": 9,
                "packets": 99,
                "first": "x",
                "last": "y",
                "frames": [],
                "initiator_hosts": ["10.0.2.99"],
                "responder_hosts": ["10.0.0.2"],
            },
        )
    )
    c = finding_of(problem(index, d, port=8444))
    assert a.id == b.id != c.id
    assert a.id == stable_id("unexpected-port", "users", "nodes", "tcp", 8443)
