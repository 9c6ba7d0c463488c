import datetime as dt
import ipaddress

import pytest

from portmatrix.addresses import split_int, to_int
from portmatrix.policy.inventory import load_inventory
from portmatrix.policy.lookup import VERDICTS, Decision, RuleIndex
from portmatrix.policy.matrix import load_matrix
from portmatrix.policy.roles import build_role_map

TODAY = dt.date(2026, 6, 1)

MATRIX = """
name: verdicts
roles:
  nodes: Cluster nodes
  admins: Administrators
  users: Users
  relay: Mail relay
rules:
  - id: ssh-from-admins
    service: SSH
    proto: tcp
    ports: 22
    from: admins
    to: nodes
  - id: node-rpc
    service: RPC
    proto: tcp
    ports: [80, "20123-32768"]
    from: nodes
    to: nodes
    initiator: either
  - id: web-from-any
    service: HTTPS
    proto: tcp
    ports: 443
    from: any
    to: nodes
  - id: admin-web
    service: HTTPS admin
    proto: tcp
    ports: 443
    from: admins
    to: nodes
  - id: smtp-out
    service: SMTP
    proto: tcp
    ports: 25
    from: nodes
    to: relay
  - id: relay-sync
    service: Sync
    proto: tcp
    ports: 7000
    from: nodes
    to: relay
    initiator: either
  - id: ntp
    service: NTP
    proto: udp
    ports: 123
    from: nodes
    to: any
  - id: app-wide
    service: App
    proto: tcp
    ports: "8000-8999"
    from: users
    to: nodes
  - id: app-narrow
    service: App TLS
    proto: tcp
    ports: 8443
    from: users
    to: nodes
  - id: icmp-echo
    service: Ping
    proto: icmp
    icmp_types: [0, 8]
    from: nodes
    to: nodes
    initiator: either
  - id: icmp-from-admins
    service: ICMP
    proto: icmp
    from: admins
    to: nodes
exceptions:
  - id: backup-ssh
    from: [10.9.9.9]
    to: nodes
    proto: tcp
    ports: 22
    reason: Nightly backup
  - id: admin-db
    from: admins
    to: [nodes]
    proto: tcp
    ports: 5432
    reason: DBA access
    expires: 2026-06-01
  - id: old-ftp
    from: [users]
    to: [nodes]
    proto: tcp
    ports: 21
    reason: Legacy transfer
    expires: 2026-05-31
"""

INVENTORY = """
roles:
  nodes: [10.1.1.11-10.1.1.16]
  admins: [192.168.10.0/28]
  users: [172.16.0.0/16]
  relay: [10.1.2.25]
"""

NODE, NODE2 = "10.1.1.11", "10.1.1.16"
ADMIN, USER, RELAY = "192.168.10.1", "172.16.5.5", "10.1.2.25"
STRANGER = "203.0.113.5"  # holds no role


@pytest.fixture
def verdict(write_yaml):
    """`verdict(initiator, responder, proto, port, today=TODAY)` -> Decision."""
    matrix = load_matrix([str(write_yaml("m.yaml", MATRIX))])
    inventory = load_inventory(str(write_yaml("site.yaml", INVENTORY)), matrix)
    role_map = build_role_map(matrix, inventory)

    def roles(text: str) -> frozenset[str]:
        hi, lo = split_int([to_int(ipaddress.ip_address(text))])
        return role_map.roles_of(int(role_map.index.lookup(hi, lo)[0]))

    def decide(init: str, resp: str, proto: str, port: int, today=TODAY) -> Decision:
        index = RuleIndex(matrix, today=today)
        return index.decide(proto, port, roles(init), roles(resp))

    return decide


def test_allowed_names_the_rule(verdict):
    assert verdict(ADMIN, NODE, "tcp", 22) == Decision(
        "allowed", rule="ssh-from-admins", covers=("ssh-from-admins",)
    )


def test_initiator_either_allows_both_ways(verdict):
    for a, b in ((NODE, NODE2), (NODE2, NODE)):
        assert verdict(a, b, "tcp", 20123).rule == "node-rpc"
    assert verdict(NODE, RELAY, "tcp", 7000).verdict == "allowed"
    assert verdict(RELAY, NODE, "tcp", 7000) == Decision(
        "allowed", rule="relay-sync", covers=("relay-sync",)
    )


def test_without_initiator_either_the_other_side_may_not_open(verdict):
    assert verdict(NODE, RELAY, "tcp", 25).rule == "smtp-out"
    assert verdict(RELAY, NODE, "tcp", 25) == Decision("wrong-direction", rule="smtp-out")


def test_node_opening_ssh_to_an_admin_is_wrong_direction(verdict):
    assert verdict(NODE, ADMIN, "tcp", 22) == Decision("wrong-direction", rule="ssh-from-admins")


def test_unexpected_source(verdict):
    assert verdict(USER, NODE, "tcp", 22) == Decision(
        "unexpected-source", related=("ssh-from-admins",)
    )
    # a port the nodes have for users, opened by an admin
    decision = verdict(ADMIN, NODE, "tcp", 8443)
    assert decision.verdict == "unexpected-source"
    assert decision.related == ("app-narrow", "app-wide")


@pytest.mark.parametrize(
    ("init", "resp", "proto", "port"),
    [
        (ADMIN, NODE, "tcp", 9999),
        (ADMIN, NODE, "udp", 22),  # the port is in the matrix, for another protocol
        (ADMIN, NODE, "sctp", 22),
        (NODE, RELAY, "tcp", 22),  # ssh is in the matrix, but not towards the relay
    ],
)
def test_unexpected_port(verdict, init, resp, proto, port):
    assert verdict(init, resp, proto, port) == Decision("unexpected-port")


def test_neither_side_holding_a_role_is_out_of_scope(verdict):
    assert verdict("8.8.8.8", "1.1.1.1", "tcp", 22) == Decision("out-of-scope")
    assert verdict("8.8.8.8", "1.1.1.1", "tcp", 443) == Decision("out-of-scope")
    assert verdict("fd00::1", "8.8.8.8", "udp", 123) == Decision("out-of-scope")


def test_an_endpoint_without_a_role_is_matched_as_any(verdict):
    assert verdict(STRANGER, NODE, "tcp", 443).rule == "web-from-any"
    assert verdict(NODE, STRANGER, "udp", 123).rule == "ntp"
    assert verdict(NODE, "fd00::1", "udp", 123).rule == "ntp"


def test_an_endpoint_without_a_role_is_flagged_when_no_rule_names_any(verdict):
    assert verdict(STRANGER, NODE, "tcp", 22) == Decision(
        "unexpected-source", related=("ssh-from-admins",)
    )
    assert verdict(STRANGER, NODE, "tcp", 9999) == Decision("unexpected-port")
    assert verdict(NODE, STRANGER, "tcp", 22) == Decision("unexpected-port")
    # ntp lets nodes open towards anyone: anyone opening it towards a node is reversed
    assert verdict(STRANGER, NODE, "udp", 123) == Decision("wrong-direction", rule="ntp")


def test_a_rule_from_any_never_makes_a_flow_wrong_direction(verdict):
    # web-from-any (any -> nodes) swapped would fit, but says nothing about direction
    assert verdict(NODE, STRANGER, "tcp", 443) == Decision("unexpected-port")


def test_an_exception_for_an_address_allows(verdict):
    assert verdict("10.9.9.9", NODE, "tcp", 22) == Decision("allowed", exception="backup-ssh")
    assert verdict("10.9.9.9", NODE, "tcp", 23).verdict == "unexpected-port"
    # the exception lets the backup host open, not the node
    assert verdict(NODE, "10.9.9.9", "tcp", 22).verdict == "unexpected-port"
    # an address named only by an exception is still no role
    assert verdict("10.9.9.9", "8.8.8.8", "tcp", 22).verdict == "out-of-scope"


def test_an_exception_for_a_role_allows_until_it_expires(verdict):
    # expires 2026-06-01: still active on that day
    assert verdict(ADMIN, NODE, "tcp", 5432) == Decision("allowed", exception="admin-db")
    late = verdict(ADMIN, NODE, "tcp", 5432, today=dt.date(2026, 6, 2))
    assert late == Decision("unexpected-port", expired=("admin-db",))


def test_an_expired_exception_allows_nothing_and_is_named(verdict):
    assert verdict(USER, NODE, "tcp", 21) == Decision("unexpected-port", expired=("old-ftp",))
    before = verdict(USER, NODE, "tcp", 21, today=dt.date(2026, 5, 31))
    assert before == Decision("allowed", exception="old-ftp")
    # an expired exception that would not have matched is not named
    assert verdict(ADMIN, NODE, "tcp", 21) == Decision("unexpected-port")


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        (79, "unexpected-port"),
        (80, "allowed"),
        (81, "unexpected-port"),
        (20122, "unexpected-port"),
        (20123, "allowed"),
        (26000, "allowed"),
        (32768, "allowed"),
        (32769, "unexpected-port"),
        (65535, "unexpected-port"),
        (0, "unexpected-port"),
    ],
)
def test_port_range_edges(verdict, port, expected):
    decision = verdict(NODE, NODE2, "tcp", port)
    assert decision.verdict == expected
    assert decision.rule == ("node-rpc" if expected == "allowed" else "")


def test_icmp_with_types(verdict):
    for icmp_type in (0, 8):
        assert verdict(NODE, NODE2, "icmp", icmp_type).rule == "icmp-echo"
    # type 3 is not echo: only admins may send any ICMP to nodes
    assert verdict(NODE, NODE2, "icmp", 3) == Decision(
        "unexpected-source", related=("icmp-from-admins",)
    )


def test_icmp_without_types_allows_every_type(verdict):
    for icmp_type in (0, 3, 8, 255):
        assert verdict(ADMIN, NODE, "icmp", icmp_type).rule == "icmp-from-admins"
    assert verdict(ADMIN, NODE, "icmpv6", 128) == Decision("unexpected-port")


def test_the_most_specific_allowing_rule_is_named(verdict):
    narrow = verdict(USER, NODE, "tcp", 8443)
    assert narrow.rule == "app-narrow"
    assert narrow.covers == ("app-narrow", "app-wide")
    assert verdict(USER, NODE, "tcp", 8444).covers == ("app-wide",)
    # same ports: a named role is more specific than `any`, whatever the file order
    admin = verdict(ADMIN, NODE, "tcp", 443)
    assert admin.rule == "admin-web"
    assert admin.covers == ("admin-web", "web-from-any")


def test_every_verdict_is_reachable(verdict):
    seen = {
        verdict(ADMIN, NODE, "tcp", 22).verdict,
        verdict(NODE, ADMIN, "tcp", 22).verdict,
        verdict(USER, NODE, "tcp", 22).verdict,
        verdict(USER, NODE, "tcp", 9).verdict,
        verdict("8.8.8.8", "1.1.1.1", "tcp", 22).verdict,
    }
    assert seen == set(VERDICTS)


def test_rules_on(write_yaml):
    index = RuleIndex(load_matrix([str(write_yaml("m.yaml", MATRIX))]), today=TODAY)
    assert [r.id for r in index.rules_on("tcp", 8500)] == ["app-wide"]
    assert [r.id for r in index.rules_on("tcp", 8443)] == ["app-narrow", "app-wide"]
    assert index.rules_on("tcp", 9000) == ()
    assert index.rules_on("sctp", 22) == ()
    assert [r.id for r in index.rules_on("icmp", 8)] == ["icmp-echo", "icmp-from-admins"]
    assert [r.id for r in index.rules_on("icmp", 9)] == ["icmp-from-admins"]
    assert [e.id for e in index.active] == ["backup-ssh", "admin-db"]
    assert [e.id for e in index.expired] == ["old-ftp"]


def test_decisions_are_memoized(write_yaml):
    index = RuleIndex(load_matrix([str(write_yaml("m.yaml", MATRIX))]), today=TODAY)
    args = ("tcp", 22, frozenset({"admins"}), frozenset({"nodes"}))
    assert index.decide(*args) is index.decide(*args)
    assert index.decide.cache_info().hits == 1
