import datetime as dt

import pytest

from portmatrix.policy.inventory import collect_inventory
from portmatrix.policy.lint import lint
from portmatrix.policy.matrix import collect_matrix

TODAY = dt.date(2026, 6, 1)

HEAD = """\
name: demo
roles:
  nodes: All nodes
  admins: Administrators
  users: Users
rules:
"""


NODES_AND_ADMINS = "roles:\n  nodes: [10.0.0.1]\n  admins: [10.0.1.1]\n"  # an inventory


def rule(rid: str, ports: str, src: str = "admins", dst: str = "nodes", **extra: str) -> str:
    lines = [f"  - id: {rid}", "    service: S", "    proto: tcp", f"    ports: {ports}"]
    lines += [f"    from: {src}", f"    to: {dst}"]
    lines += [f"    {k}: {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def icmp_rule(rid: str, types: str | None = None) -> str:
    text = f"  - id: {rid}\n    service: P\n    proto: icmp\n    from: nodes\n    to: nodes\n"
    return text + (f"    icmp_types: {types}\n" if types else "")


@pytest.fixture
def run_lint(write_yaml):
    """`run_lint(matrix_text, inventory_text=None)` -> [(severity, file, line, key, what)]."""

    def run(matrix_text: str, inventory_text: str | None = None):
        matrix = collect_matrix([str(write_yaml("m.yaml", matrix_text))])
        inventory = None
        if inventory_text is not None:
            inventory = collect_inventory(str(write_yaml("site.yaml", inventory_text)), matrix)
        return [
            (p.severity, p.file.rsplit("/", 1)[-1], p.line, p.key, p.what)
            for p in lint(matrix, inventory, TODAY)
        ]

    return run


def test_clean_matrix(run_lint):
    text = HEAD + rule("ssh", "22") + rule("web", "443", "users") + icmp_rule("ping", "[8]")
    assert run_lint(text) == []
    inventory = "roles:\n  nodes: [10.0.0.1]\n  admins: [10.0.1.0/24]\n  users: [10.0.2.0/24]\n"
    assert run_lint(text, inventory) == []


def test_a_rule_inside_a_wider_one_is_shadowed(run_lint):
    text = HEAD + rule("wide", '"20-30"') + rule("narrow", "22")
    (problem,) = run_lint(text)
    assert problem[:4] == ("warning", "m.yaml", 13, "rules.narrow")
    assert problem[4].startswith("shadowed by rule wide (")
    assert "m.yaml:7)" in problem[4]


def test_the_earlier_rule_may_be_the_shadowed_one(run_lint):
    text = HEAD + rule("narrow", "22") + rule("wide", "[21, 22, 23]")
    (problem,) = run_lint(text)
    assert problem[2:4] == (7, "rules.narrow")
    assert "shadowed by rule wide" in problem[4]


def test_identical_rules(run_lint):
    (problem,) = run_lint(HEAD + rule("a", "22") + rule("b", "22"))
    assert problem[3] == "rules.b"
    assert "shadowed by rule a" in problem[4]


def test_a_rule_from_any_shadows_one_from_a_role(run_lint):
    (problem,) = run_lint(HEAD + rule("from-admins", "22") + rule("from-any", "22", "any"))
    assert problem[3] == "rules.from-admins"
    assert "shadowed by rule from-any" in problem[4]


def test_a_rule_to_any_shadows_one_to_a_role(run_lint):
    (problem,) = run_lint(HEAD + rule("to-any", "22", dst="any") + rule("to-nodes", "22"))
    assert problem[3] == "rules.to-nodes"


def test_initiator_either_is_wider_than_from(run_lint):
    text = HEAD + rule("one-way", "22") + rule("both-ways", "22", initiator="either")
    (problem,) = run_lint(text)  # and both-ways is not shadowed by one-way
    assert problem[3] == "rules.one-way"
    assert "shadowed by rule both-ways" in problem[4]


def test_initiator_either_shadows_the_rule_written_the_other_way_round(run_lint):
    text = HEAD + rule("both-ways", "22", "nodes", "admins", initiator="either")
    (problem,) = run_lint(text + rule("admins-to-nodes", "22"))
    assert problem[2:4] == (14, "rules.admins-to-nodes")
    assert "shadowed by rule both-ways" in problem[4]


def test_any_to_any_shadows_a_two_way_rule(run_lint):
    text = HEAD + rule("both-ways", "22", "nodes", "nodes", initiator="either")
    (problem,) = run_lint(text + rule("anything", '"1-1024"', "any", "any"))
    assert problem[3] == "rules.both-ways"
    assert "shadowed by rule anything" in problem[4]


def test_icmp_for_every_type_shadows_icmp_for_some(run_lint):
    (problem,) = run_lint(HEAD + icmp_rule("echo", "[0, 8]") + icmp_rule("all"))
    assert problem[3] == "rules.echo"
    assert "shadowed by rule all" in problem[4]


def test_overlapping_rules_for_the_same_roles(run_lint):
    (problem,) = run_lint(HEAD + rule("low", '"20-25"') + rule("high", '"25-30"'))
    assert problem[:4] == ("warning", "m.yaml", 13, "rules.high")
    assert problem[4].startswith("ports overlap rule low (")


@pytest.mark.parametrize(
    "second",
    [
        rule("other-roles", '"20-30"', "users"),  # other source
        rule("other-proto", '"20-30"').replace("proto: tcp", "proto: udp"),
        rule("disjoint", '"31-40"'),
        rule("adjacent", "[19, 31]"),
    ],
)
def test_rules_that_neither_shadow_nor_overlap(run_lint, second):
    assert run_lint(HEAD + rule("first", '"20-30"') + second) == []


def test_icmp_types_that_do_not_meet(run_lint):
    assert run_lint(HEAD + icmp_rule("echo", "[0, 8]") + icmp_rule("unreach", "[3]")) == []


def test_expired_exception_is_reported(run_lint):
    text = (
        HEAD
        + rule("ssh", "22")
        + "exceptions:\n"
        + "  - id: old\n    from: [10.9.9.9]\n    to: nodes\n    proto: tcp\n    ports: 23\n"
        + "    reason: r\n    expires: 2026-05-31\n"
        + "  - id: current\n    from: [10.9.9.9]\n    to: nodes\n    proto: tcp\n    ports: 24\n"
        + "    reason: r\n    expires: 2026-06-01\n"
    )
    (problem,) = run_lint(text)
    assert problem[:4] == ("warning", "m.yaml", 14, "exceptions.old.expires")
    assert problem[4] == "expired on 2026-05-31; it no longer allows anything"


def test_a_rule_no_address_can_match(run_lint):
    text = (
        HEAD + rule("ssh", "22") + rule("web", "443", "users") + rule("out", "80", "nodes", "any")
    )
    inventory = NODES_AND_ADMINS
    problems = run_lint(text, inventory)
    assert [p[:4] for p in problems] == [
        ("warning", "site.yaml", 1, "roles.users"),  # from the inventory: used, not listed
        ("warning", "m.yaml", 13, "rules.web"),
    ]
    assert problems[1][4] == "can never match: no address holds role users"


def test_unresolved_hostname_in_the_inventory(run_lint):
    text = HEAD + rule("ssh", "22")
    inventory = (
        "roles:\n  nodes: [10.0.0.1]\n  admins: [jump.example.com, desk.example.com]\n"
        "hosts:\n  jump.example.com: 10.0.1.1\n"
    )
    (problem,) = run_lint(text, inventory)
    assert problem == (
        "warning",
        "site.yaml",
        3,
        "roles.admins",
        "no address known for desk.example.com",
    )


def test_unresolved_hostnames_written_in_the_matrix_point_at_the_matrix(run_lint):
    text = (
        HEAD.replace("  users: Users\n", "  vendor:\n    hostnames: [files.vendor.example]\n")
        + rule("up", "443", "nodes", "vendor")
        + "exceptions:\n  - id: bk\n    from: [backup.example.com]\n    to: nodes\n"
        + "    proto: tcp\n    ports: 22\n    reason: r\n"
    )
    inventory = NODES_AND_ADMINS
    problems = run_lint(text, inventory)
    unresolved = [p for p in problems if p[4].startswith("no address known")]
    assert sorted(p[:4] for p in unresolved) == [
        ("warning", "m.yaml", 5, "roles.vendor"),
        ("warning", "m.yaml", 15, "exceptions.bk.from"),
    ]


def test_errors_stop_the_other_checks(run_lint):
    text = HEAD + rule("wide", '"20-30"') + rule("narrow", "22") + rule("bad", "70000")
    inventory = "roles:\n  nodes: [10.0.0.1]\n  admins: [10.0.1.1]\n  workers: [10.0.0.2]\n"
    problems = run_lint(text, inventory)
    assert [(p[0], p[1], p[3]) for p in problems] == [
        ("error", "m.yaml", "rules.bad.ports"),
        ("error", "site.yaml", "roles.workers"),
    ]
