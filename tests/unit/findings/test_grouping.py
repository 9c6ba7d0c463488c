"""Flow findings: the severity grid of DESIGN.md on both axes, exceptions, grouping, stable ids."""

from __future__ import annotations

import pytest

from portmatrix.findings.model import stable_id
from portmatrix.testing.captures import tcp_session
from support.packets import icmp_unreachable, midstream, only, refused, syn, udp
from support.site import (
    ADMIN,
    BACKUP,
    N1,
    N2,
    OUT1,
    OUT2,
    USER,
)


def flow_findings(result):
    return [f for f in result.findings if f.kind == "flow"]


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
def test_severity_on_both_axes(check_packets, request, packets, verdict, severity):
    f = only(flow_findings(check_packets(packets)))
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
def test_no_flow_finding(check_packets, packets):
    assert flow_findings(check_packets(packets)) == []


def test_heuristic_never_makes_an_error_even_with_a_certain_flow_beside_it(check_packets):
    """A group is an error only through a flow whose initiator is certain."""
    certain = tcp_session(USER, N1, 40000, 8443)
    result = check_packets(midstream(USER, N1, 50000, 8443) + certain)
    f = only(flow_findings(result))
    assert (f.flows, f.severity, f.heuristic) == (2, "error", False)
    assert "guessed" not in f.message


# Exceptions ------------------------------------------------------------------------


def test_active_exception_allows_and_is_not_a_finding(check_packets):
    result = check_packets(tcp_session(BACKUP, N2, 40000, 22), exceptions=True)
    assert flow_findings(result) == []
    assert result.classified.counts()["allowed"] == 1


def test_traffic_allowed_by_an_exception_but_refused(check_packets):
    """An exception is not a required rule: blocked traffic it allows is a warning,
    and the finding names the exception."""
    result = check_packets(refused(BACKUP, N2, 40000, 22), exceptions=True)
    f = only(flow_findings(result))
    assert (f.verdict, f.severity) == ("allowed", "warning")
    assert "allowed by exception backup-ssh" in f.message and "refused" in f.message
    assert f.rule == "exception:backup-ssh"


# Grouping and ids ----------------------------------------------------------------


def test_flows_group_by_roles_and_service(check_packets):
    packets = (
        tcp_session(USER, N1, 40000, 8443)
        + tcp_session(USER, N1, 40001, 8443)  # same finding, other client port
        + tcp_session(USER, N2, 40002, 8443)  # another node: the same problem
        + tcp_session(USER, N2, 40003, 9443)  # another port: another problem
    )
    result = check_packets(packets)
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


def test_ids_ignore_client_port_and_hosts_of_a_role_and_are_stable(check_packets):
    a = only(flow_findings(check_packets(tcp_session(USER, N1, 40000, 8443))))
    b = only(flow_findings(check_packets(tcp_session(USER, N2, 61000, 8443))))
    c = only(flow_findings(check_packets(tcp_session(USER, N1, 40000, 9443))))
    assert a.id == b.id != c.id
    # Built from verdict, roles, proto and port (DESIGN.md): a baseline written by
    # another version or another machine still matches.
    assert a.id == stable_id("unexpected-port", "users", "nodes", "tcp", 8443)
    # An initiator with no role is named by its address.
    d = only(flow_findings(check_packets(tcp_session(OUT1, N1, 40000, 8443))))
    assert d.id == stable_id("unexpected-port", OUT1, "nodes", "tcp", 8443)
    assert d.initiator_roles == [] and d.initiator == OUT1


def test_ids_of_coverage_findings_name_the_rule(check_packets):
    one = check_packets(tcp_session(USER, N1, 40000, 8443))  # traffic, none of the rules
    two = check_packets(refused(N1, N2, 40000, 7000))
    ids = {f.rule: (f.verdict, f.id) for f in one.findings if f.kind == "coverage"}
    assert ids["node-rpc"] == ("missing-required", stable_id("missing-required", "node-rpc"))
    again = {f.rule: (f.verdict, f.id) for f in two.findings if f.kind == "coverage"}
    assert again["node-rpc"][0] == "required-unreachable"
    assert again["node-rpc"][1] != ids["node-rpc"][1]  # a different finding
    assert again["node-gossip"] == ids["node-gossip"]
