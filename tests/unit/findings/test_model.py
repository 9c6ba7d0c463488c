"""What a check reports: findings and coverage as plain data, stable ids, the order
findings come in, counts by severity and the exit status they give."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from portmatrix.findings.model import (
    SEVERITIES,
    Coverage,
    Finding,
    JudgedResult,
    sort_findings,
    stable_id,
)
from portmatrix.policy.matrix import load_matrix


def finding(fid: str, severity: str = "error", kind: str = "flow", **fields) -> Finding:
    return Finding(
        id=fid, severity=severity, kind=kind, verdict="unexpected-port", message="m", **fields
    )


def test_stable_id_is_a_digest_of_its_parts():
    digest = hashlib.sha1(b"missing-required|node-rpc").hexdigest()
    assert stable_id("missing-required", "node-rpc") == f"PM-{digest[:10]}"
    assert stable_id("a", 1) == stable_id("a", "1")  # parts as text
    assert stable_id("a", "b") != stable_id("b", "a")
    assert stable_id("ab", "c") != stable_id("a", "bc")  # parts are kept apart


def test_to_dict_is_plain_data_without_the_member_flows():
    f = finding(
        "PM-1",
        initiator_roles=["users"],
        outcomes={"refused": 2},
        frames=["1"],
        members=np.array([4, 7]),
    )
    d = f.to_dict()
    assert "members" not in d
    assert d["initiator_roles"] == ["users"] and d["outcomes"] == {"refused": 2}
    d["initiator_roles"].append("x")
    d["outcomes"]["unanswered"] = 1
    assert f.initiator_roles == ["users"] and f.outcomes == {"refused": 2}  # copies
    assert set(d) == {name for name in vars(f) if name not in ("members", "problem", "fix")}
    assert d["initiator"] is None and d["suggestion"] is None  # absent is null, not ""


def test_members_do_not_make_findings_differ():
    assert finding("PM-1", members=np.array([1])) == finding("PM-1", members=np.array([2]))


def test_findings_sort_errors_first_then_the_biggest_then_stable_fields():
    given = [
        finding("PM-c", "info", flows=900),
        finding("PM-b", "error", kind="coverage"),
        finding("PM-e", "warning", flows=3),
        finding("PM-a", "error", flows=5),
        finding("PM-d", "error", flows=50),
        finding("PM-f", "warning", flows=3),
        finding("PM-g", "error", kind="flow", flows=1, part_of="PM-b"),
    ]
    # Flow findings (the biggest first) before coverage ones; a flow finding that a
    # coverage finding rests on right after it.
    assert [f.id for f in sort_findings(given)] == [
        "PM-d",
        "PM-a",
        "PM-b",
        "PM-g",
        "PM-e",
        "PM-f",
        "PM-c",
    ]
    assert sort_findings(list(reversed(given))) == sort_findings(given)


def test_each_problem_is_counted_once():
    judged = Judged("error", "error")
    judged.findings[1].part_of = judged.findings[0].id
    assert judged.severity_counts() == {"error": 1, "warning": 0, "info": 0}
    assert judged.exit_code("error") == 1


class Judged(JudgedResult):
    def __init__(self, *severities: str) -> None:
        self.findings = [finding(f"PM-{i}", s) for i, s in enumerate(severities)]


def test_severity_counts_name_every_severity_most_severe_first():
    assert Judged().severity_counts() == {"error": 0, "warning": 0, "info": 0}
    counts = Judged("info", "warning", "info").severity_counts()
    assert counts == {"error": 0, "warning": 1, "info": 2}
    assert list(counts) == list(reversed(SEVERITIES))


@pytest.mark.parametrize(
    ("severities", "fail_on", "code"),
    [
        ((), "info", 0),
        (("info",), "info", 1),
        (("info",), "warning", 0),
        (("warning",), "warning", 1),
        (("warning", "info"), "error", 0),
        (("error",), "error", 1),
        (("error",), "never", 0),
    ],
)
def test_exit_code_is_1_at_or_above_fail_on(severities, fail_on, code):
    assert Judged(*severities).exit_code(fail_on) == code


def test_coverage_of_a_rule_before_any_flow(matrix):
    m = load_matrix([matrix("small")])
    rpc = Coverage.of(m.rule("node-rpc"))
    assert (rpc.rule, rpc.service, rpc.proto, rpc.ports) == ("node-rpc", "RPC", "tcp", "7000")
    assert (rpc.from_role, rpc.to_role, rpc.required) == ("nodes", "nodes", True)
    assert (rpc.flows, rpc.established, rpc.failed, rpc.pairs, rpc.status) == (0, 0, 0, 0, None)
    ping = Coverage.of(m.rule("node-ping"))
    assert (ping.ports, ping.required) == ("any", False)  # ICMP of every type
    assert ping.to_dict()["ports"] == "any"
    assert set(ping.to_dict()) == set(vars(ping))
