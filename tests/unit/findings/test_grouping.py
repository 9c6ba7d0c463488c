"""Flow findings: the severity grid of DESIGN.md on both axes, exceptions, grouping, stable ids."""

from __future__ import annotations

import datetime as dt

import pytest
from scapy.layers.inet import ICMP, TCP, UDP, IPerror

from portmatrix.check import run_check
from portmatrix.findings.model import stable_id
from portmatrix.testing.captures import ether, ip, tcp_session, write_pcap
from support.site import (
    ADMIN,
    BACKUP,
    N1,
    N2,
    OUT1,
    OUT2,
    USER,
    write_site,
)

TODAY = dt.date(2025, 1, 1)  # backup-ssh active, old-snmp expired


def check(tmp_path, packets, *, exceptions=False, name="c.pcap"):
    tmp_path.mkdir(parents=True, exist_ok=True)
    site = write_site(tmp_path)
    path = write_pcap(tmp_path / name, [ether(p) for p in packets])
    rules = [str(site.matrix)] + ([str(site.exceptions)] if exceptions else [])
    return run_check([str(path)], rules, str(site.inventory), today=TODAY)


def flow_findings(result):
    return [f for f in result.findings if f.kind == "flow"]


def only(items):
    assert len(items) == 1, items
    return items[0]


def syn(src, dst, sport, dport):
    return ip(src, dst) / TCP(sport=sport, dport=dport, flags="S", seq=1000)


def rst_ack(src, dst, sport, dport):
    return ip(src, dst) / TCP(sport=sport, dport=dport, flags="RA", seq=0, ack=1001)


def refused(client, server, sport, dport):
    return [syn(client, server, sport, dport), rst_ack(server, client, dport, sport)]


def udp(src, dst, sport, dport, load=b"x"):
    return ip(src, dst) / UDP(sport=sport, dport=dport) / load


def icmp_unreachable(probe):
    return ip(probe.dst, probe.src) / ICMP(type=3, code=3) / IPerror(bytes(probe)[:28])


def midstream(client, server, sport, dport):
    return tcp_session(client, server, sport, dport, handshake=False, close="open")


# The severity grid ---------------------------------------------------------------

GRID = [
    # (case, packets, verdict, severity)
    ("forbidden established", tcp_session(USER, N1, 40000, 8443), "unexpected-port", "error"),
    ("wrong way established", tcp_session(N1, ADMIN, 40000, 22), "wrong-direction", "error"),
    ("wrong source established", tcp_session(USER, N1, 40000, 22), "unexpected-source", "error"),
    ("forbidden refused", refused(USER, N1, 40000, 8443), "unexpected-port", "info"),
    ("forbidden unanswered", [syn(USER, N1, 40000, 8443)], "unexpected-port", "info"),
    # Silence proves nothing for UDP: it may have got through (DESIGN.md), undecided.
    ("forbidden udp unanswered", [udp(USER, N1, 40000, 161)], "unexpected-port", "warning"),
    (
        "forbidden udp refused",
        [udp(USER, N1, 40000, 161), icmp_unreachable(udp(USER, N1, 40000, 161))],
        "unexpected-port",
        "info",
    ),
    ("required refused", refused(N1, N2, 40000, 7000), "allowed", "error"),
    ("required unanswered", [syn(N1, N2, 40000, 7000)], "allowed", "error"),
    (
        "required udp refused",
        [udp(N1, N2, 40000, 7946), icmp_unreachable(udp(N1, N2, 40000, 7946))],
        "allowed",
        "error",
    ),
    ("optional refused", refused(ADMIN, N1, 40000, 22), "allowed", "warning"),
    ("optional unanswered", [syn(ADMIN, N1, 40000, 22)], "allowed", "warning"),
    ("midstream forbidden", midstream(USER, N1, 50000, 8443), "unexpected-port", "warning"),
    ("midstream wrong way", midstream(N1, ADMIN, 50000, 22), "wrong-direction", "warning"),
]


@pytest.mark.parametrize(
    ("packets", "verdict", "severity"),
    [case[1:] for case in GRID],
    ids=[case[0] for case in GRID],
)
def test_severity_on_both_axes(tmp_path, request, packets, verdict, severity):
    f = only(flow_findings(check(tmp_path, packets)))
    assert (f.verdict, f.severity) == (verdict, severity)
    # Only the mid-stream cases rest on a guessed initiator, and they say so.
    guessed = request.node.callspec.id.startswith("midstream")
    assert f.heuristic is guessed
    assert ("initiator guessed from ports" in f.message) is guessed


@pytest.mark.parametrize(
    "packets",
    [
        tcp_session(USER, N1, 40000, 443),  # allowed and established
        [udp(N1, ADMIN, 40000, 514)],  # allowed UDP without a reply: silence proves nothing
        tcp_session(OUT1, OUT2, 40000, 80),  # out of scope: counted, not flagged
        refused(OUT1, OUT2, 40000, 80),
        midstream(USER, N1, 50000, 443),  # allowed, mid-stream
    ],
    ids=["allowed", "allowed-udp-silent", "out-of-scope", "out-of-scope-refused", "midstream"],
)
def test_no_flow_finding(tmp_path, packets):
    assert flow_findings(check(tmp_path, packets)) == []


def test_heuristic_never_makes_an_error_even_with_a_certain_flow_beside_it(tmp_path):
    """A group is an error only through a flow whose initiator is certain."""
    certain = tcp_session(USER, N1, 40000, 8443)
    result = check(tmp_path, midstream(USER, N1, 50000, 8443) + certain)
    f = only(flow_findings(result))
    assert (f.flows, f.severity, f.heuristic) == (2, "error", False)
    assert "guessed" not in f.message


def test_messages_name_the_rule(tmp_path):
    packets = (
        refused(N1, N2, 40000, 7000)
        + refused(ADMIN, N1, 40001, 22)
        + tcp_session(N1, ADMIN, 40002, 22)
        + tcp_session(USER, N2, 40003, 22)
    )
    by_port = {(f.initiator, f.port): f for f in flow_findings(check(tmp_path, packets))}
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


# Exceptions ------------------------------------------------------------------------


def test_expired_exception_is_named(tmp_path):
    result = check(tmp_path, [udp(USER, N2, 40000, 161)], exceptions=True)
    f = only(flow_findings(result))
    assert f.verdict == "unexpected-port"
    assert f.expired_exceptions == ["old-snmp"]
    assert "expired exception old-snmp would have allowed it" in f.message
    expired = only([g for g in result.findings if g.kind == "matrix"])
    assert (expired.verdict, expired.severity, expired.rule) == (
        "expired-exception",
        "warning",
        "old-snmp",
    )
    assert "expired on 2020-01-01" in expired.message and "monitoring trial" in expired.message


def test_active_exception_allows_and_is_not_a_finding(tmp_path):
    result = check(tmp_path, tcp_session(BACKUP, N2, 40000, 22), exceptions=True)
    assert flow_findings(result) == []
    assert result.classified.counts()["allowed"] == 1


def test_traffic_allowed_by_an_exception_but_refused(tmp_path):
    """An exception is not a required rule: blocked traffic it allows is a warning,
    and the finding names the exception."""
    result = check(tmp_path, refused(BACKUP, N2, 40000, 22), exceptions=True)
    f = only(flow_findings(result))
    assert (f.verdict, f.severity) == ("allowed", "warning")
    assert "allowed by exception backup-ssh" in f.message and "refused" in f.message
    assert f.rule == "exception:backup-ssh"


# Grouping and ids ----------------------------------------------------------------


def test_flows_group_by_roles_and_service(tmp_path):
    packets = (
        tcp_session(USER, N1, 40000, 8443)
        + tcp_session(USER, N1, 40001, 8443)  # same finding, other client port
        + tcp_session(USER, N2, 40002, 8443)  # another node: the same problem
        + tcp_session(USER, N2, 40003, 9443)  # another port: another problem
    )
    result = check(tmp_path, packets)
    groups = {f.port: f for f in flow_findings(result)}
    assert set(groups) == {8443, 9443}
    three = groups[8443]
    assert (three.flows, three.packets, three.outcomes) == (3, 24, {"established": 3})
    assert (three.initiators, three.responders, three.initiator, three.responder) == (
        1,
        2,
        USER,
        None,
    )
    assert three.pairs == [
        {"initiator": USER, "responder": N1, "flows": 2},
        {"initiator": USER, "responder": N2, "flows": 1},
    ]
    assert three.frames == ["1", "9", "17"]  # first frame of each flow
    assert three.first_seen < three.last_seen
    assert "users" in three.message and "nodes (2 hosts)" in three.message
    assert groups[9443].flows == 1
    assert groups[9443].id != three.id


def test_ids_ignore_client_port_and_hosts_of_a_role_and_are_stable(tmp_path):
    a = only(flow_findings(check(tmp_path / "a", tcp_session(USER, N1, 40000, 8443))))
    b = only(flow_findings(check(tmp_path / "b", tcp_session(USER, N2, 61000, 8443))))
    c = only(flow_findings(check(tmp_path / "c", tcp_session(USER, N1, 40000, 9443))))
    assert a.id == b.id != c.id
    # Built from verdict, roles, proto and port (DESIGN.md): a baseline written by
    # another version or another machine still matches.
    assert a.id == stable_id("unexpected-port", "users", "nodes", "tcp", 8443)
    # An initiator with no role is named by its address.
    d = only(flow_findings(check(tmp_path / "d", tcp_session(OUT1, N1, 40000, 8443))))
    assert d.id == stable_id("unexpected-port", OUT1, "nodes", "tcp", 8443)
    assert d.initiator_roles == [] and d.initiator == OUT1


def test_ids_of_coverage_findings_name_the_rule(tmp_path):
    one = check(tmp_path / "a", [])
    two = check(tmp_path / "b", refused(N1, N2, 40000, 7000))
    ids = {f.rule: (f.verdict, f.id) for f in one.findings}
    assert ids["node-rpc"] == ("missing-required", stable_id("missing-required", "node-rpc"))
    again = {f.rule: (f.verdict, f.id) for f in two.findings if f.kind == "coverage"}
    assert again["node-rpc"][0] == "required-unreachable"
    assert again["node-rpc"][1] != ids["node-rpc"][1]  # a different finding
    assert again["node-gossip"] == ids["node-gossip"]


def test_forbidden_silence_says_it_proves_nothing_only_where_it_does_not(tmp_path):
    packets = [udp(USER, N1, 40000, 161), syn(USER, N1, 40001, 8443)]
    by_port = {f.port: f for f in flow_findings(check(tmp_path, packets))}
    remark = "no reply, which does not show it was blocked"
    assert remark in by_port[161].message  # UDP: may have got through
    assert remark not in by_port[8443].message  # an unanswered SYN did not
