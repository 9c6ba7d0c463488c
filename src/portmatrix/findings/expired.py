"""Findings about the matrix itself: exceptions that expired and allow nothing now."""

from __future__ import annotations

from portmatrix.findings.model import Finding, stable_id
from portmatrix.policy.lookup import RuleIndex
from portmatrix.policy.matrix import Matrix


def matrix_findings(matrix: Matrix, index: RuleIndex) -> list[Finding]:
    out = []
    for exc in index.expired:
        out.append(
            Finding(
                id=stable_id("expired-exception", exc.id),
                severity="warning",
                kind="matrix",
                verdict="expired-exception",
                message=f"exception {exc.id} ({exc.source}) expired on {exc.expires} and no "
                f"longer allows anything; reason was: {exc.reason}",
                action=f"Renew exception {exc.id} with a new `expires:` date, or delete it.",
                rule=exc.id,
            )
        )
    return out
