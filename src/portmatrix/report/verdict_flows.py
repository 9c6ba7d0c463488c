"""`check --flows FILE`: every flow, allowed or not, with its verdict and rule."""

from __future__ import annotations

from portmatrix.check import Result
from portmatrix.lookup import VERDICTS
from portmatrix.report.flow_rows import flow_columns
from portmatrix.report.flows_view import render_csv, render_json


def verdict_columns(result: Result) -> dict[str, list]:
    columns = flow_columns(result.traffic.flows, several_files=len(result.traffic.captures) > 1)
    cls = result.classified
    decisions = cls.decisions
    columns["verdict"] = [VERDICTS[v] for v in cls.verdict.tolist()]
    rule = []
    for k in cls.decision.tolist():
        d = decisions[k]
        rule.append(f"exception:{d.exception}" if d.exception else d.rule)
    columns["rule"] = rule
    return columns


def render_flows(result: Result, path: str) -> str:
    columns = verdict_columns(result)
    if path.endswith(".json"):
        return render_json(columns, result.traffic)
    return render_csv(columns, result.traffic)
