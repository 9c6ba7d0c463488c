"""Findings about the matrix itself: exceptions that expired and allow nothing."""

from __future__ import annotations

import datetime as dt

from portmatrix.findings.expired import matrix_findings
from portmatrix.findings.model import stable_id
from portmatrix.policy.lookup import RuleIndex
from portmatrix.policy.matrix import load_matrix
from support.packets import only, udp
from support.site import N2, USER


def flow_findings(result):
    return [f for f in result.findings if f.kind == "flow"]


def test_expired_exception_is_named(check_packets):
    result = check_packets([udp(USER, N2, 40000, 161)], exceptions=True)
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


def test_one_finding_per_expired_exception_on_the_day_it_counts(site):
    small = site("small")
    matrix = load_matrix([str(small.matrix), str(small.exceptions)])
    # old-snmp expires 2020-01-01, backup-ssh 2099-01-01.
    assert matrix_findings(matrix, RuleIndex(matrix, dt.date(2019, 12, 31))) == []
    (old,) = matrix_findings(matrix, RuleIndex(matrix, dt.date(2020, 1, 2)))
    assert old.id == stable_id("expired-exception", "old-snmp")
    assert (old.kind, old.verdict, old.severity, old.rule) == (
        "matrix",
        "expired-exception",
        "warning",
        "old-snmp",
    )
    assert old.message.startswith(f"exception old-snmp ({small.exceptions}:")
    assert old.message.endswith(
        "expired on 2020-01-01 and no longer allows anything; reason was: monitoring trial"
    )
    both = matrix_findings(matrix, RuleIndex(matrix, dt.date(2100, 1, 1)))
    assert [f.rule for f in both] == ["backup-ssh", "old-snmp"]
    plain = load_matrix([str(small.matrix)])  # no exceptions at all
    assert matrix_findings(plain, RuleIndex(plain, dt.date(2100, 1, 1))) == []
