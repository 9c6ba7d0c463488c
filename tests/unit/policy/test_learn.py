"""Drafting a matrix from flows: what teaches, how roles are attributed, ports
generalised, thresholds, required candidates, draft roles, a base matrix."""

from __future__ import annotations

import ipaddress
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portmatrix.addresses import split_int, to_int
from portmatrix.flows.model import (
    BY_SYN,
    ESTABLISHED,
    MIDSTREAM,
    OUTCOMES,
    REFUSED,
    UNANSWERED,
    Flows,
)
from portmatrix.policy.classify import classify
from portmatrix.policy.inventory import load_inventory
from portmatrix.policy.learn import DraftOptions, learn
from portmatrix.policy.lookup import VERDICTS, RuleIndex
from portmatrix.policy.matrix import Matrix, Role, load_matrix
from portmatrix.policy.portsets import RangeOptions
from portmatrix.policy.roles import build_role_map
from portmatrix.textforms import iso

S = 1_000_000_000
T0 = 1_700_000_000 * S
PROTO = {"tcp": 6, "udp": 17, "icmp": 1, "gre": 47, "sctp": 132}

INVENTORY = """\
roles:
  nodes: [10.0.0.1-10.0.0.4]
  admins: [10.0.1.5, 10.0.1.6]
  users: [10.0.2.0/24]
  monitor: [10.0.2.50]
"""


def flows(rows) -> Flows:
    """rows: (proto, initiator, responder, port or ICMP type, start s, outcome[, end s])."""
    cols: dict[str, list] = {
        k: []
        for k in (
            "proto",
            "icmp_req",
            "resp_port",
            "first_ts",
            "last_ts",
            "outcome",
            "initiator_by",
            "init_port",
        )
    }
    inits, resps = [], []
    for k, (proto, a, b, port, start, outcome, *end) in enumerate(rows):
        inits.append(to_int(ipaddress.ip_address(a)))
        resps.append(to_int(ipaddress.ip_address(b)))
        cols["proto"].append(PROTO[proto])
        cols["icmp_req"].append(port if proto == "icmp" else -1)
        cols["resp_port"].append(0 if proto == "icmp" else port)
        cols["init_port"].append(40000 + k)
        cols["first_ts"].append(T0 + int(start * S))
        cols["last_ts"].append(T0 + int((end[0] if end else start + 1) * S))
        cols["outcome"].append(outcome)
        cols["initiator_by"].append(BY_SYN)
    ih, il = split_int(inits)
    rh, rl = split_int(resps)
    return Flows.from_columns(
        {
            **{k: np.array(v) for k, v in cols.items()},
            "init_hi": ih,
            "init_lo": il,
            "resp_hi": rh,
            "resp_lo": rl,
        }
    )


@pytest.fixture
def inv(write_yaml):
    return load_inventory(str(write_yaml("inv.yaml", INVENTORY)))


def rules_of(draft):
    return sorted(
        (r.rule.from_role, r.rule.to_role, r.rule.proto, r.rule.ports, r.rule.icmp_types)
        for r in draft.rules
    )


def as_matrix(draft) -> Matrix:
    return Matrix(name=draft.name, roles=dict(draft.roles), rules=[r.rule for r in draft.rules])


def verdicts(table: Flows, matrix: Matrix, inv) -> list[str]:
    cls = classify(table, RuleIndex(matrix), build_role_map(matrix, inv))
    return [VERDICTS[v] for v in cls.verdict.tolist()]


def test_only_established_flows_teach_and_the_rest_is_listed(inv):
    table = flows(
        [
            ("tcp", "10.0.1.5", "10.0.0.1", 22, 0, ESTABLISHED),
            ("tcp", "10.0.2.7", "10.0.0.1", 9999, 1, REFUSED),
            ("tcp", "10.0.2.7", "10.0.0.2", 9999, 2, UNANSWERED),
            ("udp", "10.0.0.1", "10.0.1.5", 514, 3, UNANSWERED),
            ("tcp", "10.0.0.3", "10.0.0.4", 7000, 4, MIDSTREAM),
        ]
    )
    draft = learn(table, None, inv)
    assert rules_of(draft) == [("admins", "nodes", "tcp", ((22, 22),), ())]
    listed = {(u.from_role, u.to_role, u.proto, u.port): u.outcomes for u in draft.unlearned}
    assert listed == {
        ("users", "nodes", "tcp", 9999): {"refused": 1, "unanswered": 1},
        ("nodes", "admins", "udp", 514): {"unanswered": 1},
        ("nodes", "nodes", "tcp", 7000): {"midstream": 1},
    }
    assert draft.counts["taught"] == 1 and draft.counts["not_learned"] == 4


def test_every_outcome_but_established_stays_out():
    # flow records add outcomes (a `blocked` one): whatever is not established never teaches
    assert OUTCOMES[ESTABLISHED] == "established"
    for code in range(len(OUTCOMES)):
        table = flows([("tcp", "10.0.1.5", "10.0.0.1", 22, 0, code)])
        assert bool(learn(table, None, None).rules) == (code == ESTABLISHED)


def test_protocols_a_matrix_cannot_name_are_listed_not_drafted(inv, tmp_path):
    from portmatrix.policy.draft_file import Provenance, render
    from portmatrix.policy.matrix import collect_matrix

    table = flows(
        [
            ("gre", "10.0.0.1", "10.0.0.2", 0, 0, ESTABLISHED),
            ("sctp", "10.0.0.1", "10.0.0.2", 3868, 1, ESTABLISHED),
        ]
    )
    draft = learn(table, None, inv)
    assert rules_of(draft) == [("nodes", "nodes", "sctp", ((3868, 3868),), ())]
    assert [(u.proto, u.outcomes) for u in draft.unlearned] == [("47", {"established": 1})]
    assert draft.counts["unnameable"] == 1 and draft.counts["not_learned"] == 1
    text = render(draft, Provenance([], None, [], "0", "portmatrix check"))
    assert "#   nodes → nodes IP protocol 47: 1 flow(s) (established 1)" in text
    path = tmp_path / "d.yaml"
    path.write_text(text, encoding="utf-8")
    assert collect_matrix([str(path)]).problems == []


def test_the_learning_input_is_allowed_by_its_own_draft(inv):
    rnd = random.Random(4)
    rows = []
    for k in range(300):
        a, b, proto, port = rnd.choice(
            [
                (f"10.0.2.{rnd.randint(1, 40)}", f"10.0.0.{rnd.randint(1, 4)}", "tcp", 443),
                ("10.0.1.5", f"10.0.0.{rnd.randint(1, 4)}", "tcp", 22),
                ("10.0.0.1", "10.0.0.2", "tcp", rnd.randint(20000, 30000)),
                ("10.0.0.3", "10.0.0.1", "icmp", 8),
                ("10.0.0.2", f"192.0.2.{rnd.randint(1, 9)}", "udp", 123),
                ("10.0.2.50", "10.0.0.4", "tcp", 9100),
            ]
        )
        rows.append((proto, a, b, port, k, ESTABLISHED))
    table = flows(rows)
    draft = learn(table, None, inv)
    assert set(verdicts(table, as_matrix(draft), inv)) == {"allowed"}


def test_thresholds_keep_one_off_accidents_out_and_say_so(inv):
    rows = [("tcp", f"10.0.2.{i}", "10.0.0.1", 443, i, ESTABLISHED) for i in range(1, 6)]
    rows += [("tcp", "10.0.2.9", "10.0.0.2", 8443, 10, ESTABLISHED)]  # once, one host
    rows += [("tcp", "10.0.2.9", "10.0.0.3", 8080, 11 + i, ESTABLISHED) for i in range(3)]
    table = flows(rows)
    everything = learn(table, None, inv)
    assert [r.rule.ports for r in everything.rules] == [
        ((443, 443),),
        ((8080, 8080),),
        ((8443, 8443),),
    ]
    by_flows = learn(table, None, inv, options=DraftOptions(min_flows=2))
    assert [r.rule.ports for r in by_flows.rules] == [((443, 443),), ((8080, 8080),)]
    assert [(r.rule.ports, r.evidence.flows) for r in by_flows.kept_out] == [(((8443, 8443),), 1)]
    by_hosts = learn(table, None, inv, options=DraftOptions(min_hosts=2))
    assert [r.rule.ports for r in by_hosts.rules] == [((443, 443),)]
    assert sorted(r.rule.ports for r in by_hosts.kept_out) == [((8080, 8080),), ((8443, 8443),)]
    assert by_hosts.counts["kept_out_flows"] == 4


def test_ports_become_ranges_only_with_enough_evidence(inv):
    rows = [("tcp", "10.0.0.1", "10.0.0.2", 4000 + i % 10, i, ESTABLISHED) for i in range(40)]
    rows += [("tcp", "10.0.1.5", "10.0.0.2", p, 50, ESTABLISHED) for p in (5000, 5001, 5002)]
    draft = learn(flows(rows), None, inv)
    assert rules_of(draft) == [
        ("admins", "nodes", "tcp", ((5000, 5000),), ()),
        ("admins", "nodes", "tcp", ((5001, 5001),), ()),
        ("admins", "nodes", "tcp", ((5002, 5002),), ()),
        ("nodes", "nodes", "tcp", ((4000, 4009),), ()),
    ]
    ranged = next(r for r in draft.rules if r.rule.ports == ((4000, 4009),))
    assert "10 distinct ports seen in 40 flows" in ranged.rule.description
    strict = learn(flows(rows), None, inv, options=DraftOptions(ranges=RangeOptions(min_ports=11)))
    assert len(strict.rules) == 13


def test_ephemeral_responder_ports_beside_ftp_are_passive_ftp_data(inv):
    rnd = random.Random(7)
    rows = [("tcp", "10.0.2.7", "10.0.0.1", 21, i, ESTABLISHED) for i in range(20)]
    rows += [
        ("tcp", "10.0.2.7", "10.0.0.1", p, 30 + i, ESTABLISHED)
        for i, p in enumerate(rnd.sample(range(33000, 60000), 20))
    ]
    draft = learn(flows(rows), None, inv)
    assert [(r.rule.service, r.rule.ports) for r in draft.rules] == [
        ("FTP", ((21, 21),)),
        ("FTP passive data", ((32768, 60999),)),
    ]


def test_icmp_rules_list_the_request_types(inv):
    rows = [
        ("icmp", "10.0.0.1", "10.0.0.2", 8, 0, ESTABLISHED),
        ("icmp", "10.0.0.3", "10.0.0.1", 13, 1, ESTABLISHED),
    ]
    draft = learn(flows(rows), None, inv)
    assert rules_of(draft) == [("nodes", "nodes", "icmp", (), (8, 13))]
    assert draft.rules[0].rule.id == "nodes-to-nodes-icmp"


def test_a_rule_seen_in_most_time_buckets_is_a_required_candidate(inv):
    # 100 s window, 10 buckets: 443 every 10 s, 22 in the first half only,
    # 7000 one connection held open from 0 s to 100 s
    rows = [("tcp", "10.0.2.7", "10.0.0.1", 443, t, ESTABLISHED) for t in range(0, 100, 10)]
    rows += [("tcp", "10.0.1.5", "10.0.0.1", 22, t, ESTABLISHED) for t in range(0, 50, 10)]
    rows += [("tcp", "10.0.0.1", "10.0.0.2", 7000, 0, ESTABLISHED, 100)]
    table = flows(rows)
    draft = learn(table, None, inv)
    shares = {r.rule.ports[0][0]: (r.rule.required, r.share) for r in draft.rules}
    assert shares == {443: (True, 1.0), 22: (False, 0.5), 7000: (True, 1.0)}
    lenient = learn(table, None, inv, options=DraftOptions(required_share=0.5))
    assert all(r.rule.required for r in lenient.rules)
    finer = learn(table, None, inv, options=DraftOptions(buckets=20))
    assert {r.rule.ports[0][0]: r.evidence.buckets for r in finer.rules} == {
        443: 10,
        22: 5,
        7000: 20,
    }


def test_a_host_with_several_roles_is_taken_as_the_role_that_explains_the_traffic(inv):
    # 10.0.2.50 is a user and the monitor: its 443 is what users do; its 9100
    # nobody else does, so it is taken as its most specific role, the monitor
    rows = [("tcp", "10.0.2.7", "10.0.0.1", 443, 0, ESTABLISHED)]
    rows += [("tcp", "10.0.2.50", "10.0.0.2", 443, 1, ESTABLISHED)]
    rows += [("tcp", "10.0.2.50", "10.0.0.3", 9100, 2, ESTABLISHED)]
    draft = learn(flows(rows), None, inv)
    assert rules_of(draft) == [
        ("monitor", "nodes", "tcp", ((9100, 9100),), ()),
        ("users", "nodes", "tcp", ((443, 443),), ()),
    ]
    assert draft.choices == [
        "hosts holding monitor, users (e.g. 10.0.2.50), as initiator of tcp/9100: taken as "
        "monitor (fewest addresses)",
        "hosts holding monitor, users (e.g. 10.0.2.50), as initiator of tcp/443: taken as "
        "users (hosts holding it alone do the same)",
    ]


def test_addresses_with_no_role_get_draft_roles_and_flows_between_two_stay_out(inv):
    rows = [("tcp", "10.0.0.1", f"10.9.0.{i}", 9200, i, ESTABLISHED) for i in (1, 2, 3, 4)]
    rows += [("udp", "10.0.0.2", "192.0.2.53", 53, 5, ESTABLISHED)]
    rows += [("tcp", "192.0.2.1", "192.0.2.2", 80, 6, ESTABLISHED)]  # no role at either end
    draft = learn(flows(rows), None, inv)
    assert {
        n: [e.text for e in r.entries]
        for n, r in draft.roles.items()
        if draft.origins[n] == "draft"
    } == {
        "net-10-9-0-0-29": ["10.9.0.0/29"],
        "host-192-0-2-53": ["192.0.2.53"],
    }
    assert rules_of(draft) == [
        ("nodes", "host-192-0-2-53", "udp", ((53, 53),), ()),
        ("nodes", "net-10-9-0-0-29", "tcp", ((9200, 9200),), ()),
    ]
    assert draft.counts["out_of_scope"] == 1
    # without an inventory every address gets a draft role, and everything teaches
    bare = learn(flows(rows), None, None)
    assert len(bare.rules) == 3


def test_with_a_base_only_what_it_does_not_allow_is_drafted(write_yaml, inv):
    base = load_matrix(
        [
            str(
                write_yaml(
                    "base.yaml",
                    """
                    name: base
                    roles:
                      nodes: Nodes
                      admins: Admins
                      users: Users
                      monitor: Monitor
                      vendor-cloud:
                        description: The vendor's cloud
                        addresses: [198.51.100.9]
                    rules:
                      - {id: ssh, service: SSH, proto: tcp, ports: 22, from: admins, to: nodes}
                    """,
                )
            )
        ]
    )
    inv = load_inventory(str(write_yaml("inv2.yaml", INVENTORY)), base)
    rows = [
        ("tcp", "10.0.1.5", "10.0.0.1", 22, 0, ESTABLISHED),
        ("tcp", "10.0.1.5", "10.0.0.1", 2222, 1, ESTABLISHED),
        ("tcp", "10.0.0.1", "198.51.100.9", 443, 2, ESTABLISHED),
    ]
    draft = learn(flows(rows), base, inv)
    assert rules_of(draft) == [
        ("admins", "nodes", "tcp", ((2222, 2222),), ()),
        ("nodes", "vendor-cloud", "tcp", ((443, 443),), ()),
    ]
    assert draft.counts["base_allowed"] == 1
    assert draft.roles["vendor-cloud"] == base.roles["vendor-cloud"]  # copied as it is
    assert set(draft.roles) == set(base.roles)


def test_ids_are_stable_and_do_not_depend_on_flow_order(inv):
    rows = [
        ("tcp", f"10.0.2.{i}", "10.0.0.1", p, i, ESTABLISHED)
        for i in range(1, 30)
        for p in (443, 80)
    ]
    rows += [("icmp", "10.0.0.1", "10.0.0.2", 8, 3, ESTABLISHED)]
    first = learn(flows(rows), None, inv)
    random.Random(1).shuffle(rows)
    again = learn(flows(rows), None, inv)
    assert [r.rule for r in first.rules] == [r.rule for r in again.rules]
    assert [r.rule.id for r in first.rules] == [
        "nodes-to-nodes-icmp",
        "users-to-nodes-tcp-80",
        "users-to-nodes-tcp-443",
    ]


def test_ids_never_collide_with_the_base(write_yaml):
    base = load_matrix(
        [
            str(
                write_yaml(
                    "b.yaml",
                    "name: b\nroles: {a: A, b: B}\nrules:\n"
                    "  - {id: a-to-b-tcp-1, service: x, proto: tcp, ports: 2, from: a, to: b}\n",
                )
            )
        ]
    )
    inv = load_inventory(str(write_yaml("i.yaml", "roles: {a: [10.0.0.1], b: [10.0.0.2]}\n")), base)
    draft = learn(flows([("tcp", "10.0.0.1", "10.0.0.2", 1, 0, ESTABLISHED)]), base, inv)
    assert [r.rule.id for r in draft.rules] == ["a-to-b-tcp-1-2"]


def test_no_flow_gives_an_empty_draft(inv):
    draft = learn(flows([]), None, inv)
    assert draft.rules == [] and draft.window is None
    assert list(draft.roles) == ["nodes", "admins", "users", "monitor"]
    assert isinstance(draft.roles["nodes"], Role)


HOSTS = ["10.0.0.1", "10.0.0.2", "10.0.1.5", "10.0.2.7", "10.0.2.8", "fd00::1"]
ROLE_OF = {"10.0.0.1": "nodes", "10.0.0.2": "nodes", "10.0.1.5": "admins"}
ROLE_OF |= {"10.0.2.7": "users", "10.0.2.8": "users"}


def reference(rows, buckets: int) -> dict:
    """Evidence per (from, to, proto, port), flow by flow: the obvious way."""
    t0 = min(T0 + int(r[4] * S) for r in rows)
    t1 = max(T0 + int((r[6] if len(r) > 6 else r[4] + 1) * S) for r in rows)
    span = max(t1 - t0, 1)
    out: dict = {}
    for proto, a, b, port, start, outcome, *end in rows:
        if outcome != ESTABLISHED or (a not in ROLE_OF and b not in ROLE_OF):
            continue
        first, last = T0 + int(start * S), T0 + int((end[0] if end else start + 1) * S)
        key = (ROLE_OF.get(a), ROLE_OF.get(b), proto, port)
        e = out.setdefault(
            key,
            {"flows": 0, "init": set(), "resp": set(), "first": first, "last": last, "b": set()},
        )
        e["flows"] += 1
        e["init"].add(a)
        e["resp"].add(b)
        e["first"], e["last"] = min(e["first"], first), max(e["last"], last)
        lo = min((first - t0) * buckets // span, buckets - 1)
        hi = min((last - t0) * buckets // span, buckets - 1)
        e["b"].update(range(lo, hi + 1))
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["tcp", "udp"]),
            st.sampled_from(HOSTS),
            st.sampled_from(HOSTS),
            st.sampled_from([22, 80, 443, 7000]),
            st.integers(0, 1000),
            st.sampled_from([ESTABLISHED, ESTABLISHED, REFUSED, MIDSTREAM]),
            st.integers(0, 1200),
        ).filter(lambda r: r[1] != r[2] and r[6] >= r[4]),
        min_size=1,
        max_size=60,
    ),
    st.integers(2, 64),
)
def test_the_evidence_agrees_with_counting_flow_by_flow(write_inventory, rows, buckets):
    # only hosts with one role (or none: fd00::1 gets a draft role of its own)
    options = DraftOptions(buckets=buckets, ranges=RangeOptions(min_ports=1000))
    draft = learn(flows(rows), None, write_inventory, options=options)
    expected = reference(rows, buckets)
    got = {}
    for r in draft.rules:
        key = (
            None if r.rule.from_role.startswith("host-") else r.rule.from_role,
            None if r.rule.to_role.startswith("host-") else r.rule.to_role,
            r.rule.proto,
            r.rule.ports[0][0],
        )
        e = r.evidence
        got[key] = (e.flows, e.initiators, e.responders, e.first, e.last, e.buckets)
    want = {
        k: (
            e["flows"],
            len(e["init"]),
            len(e["resp"]),
            str(iso(np.array([e["first"]]))[0]),
            str(iso(np.array([e["last"]]))[0]),
            len(e["b"]),
        )
        for k, e in expected.items()
    }
    assert got == want


@pytest.fixture(scope="module")
def write_inventory(tmp_path_factory):
    path = tmp_path_factory.mktemp("inv") / "inv.yaml"
    path.write_text(
        "roles:\n  nodes: [10.0.0.1, 10.0.0.2]\n  admins: [10.0.1.5]\n"
        "  users: [10.0.2.7, 10.0.2.8]\n",
        encoding="utf-8",
    )
    return load_inventory(str(path))
