"""`check --flows FILE`: every flow, allowed or not, with its verdict and rule."""

from __future__ import annotations

from portmatrix.check import Result
from portmatrix.policy.lookup import VERDICTS
from portmatrix.report.flow_rows import flow_columns
from portmatrix.report.flows_view import render_csv, render_json


def verdict_columns(result: Result) -> dict[str, list]:
    captures = result.traffic.captures
    columns = flow_columns(result.traffic.flows, len(captures) > 1, captures)
    cls = result.classified
    decisions = cls.decisions
    columns["verdict"] = [VERDICTS[v] for v in cls.verdict.tolist()]
    rule = []
    for k in cls.decision.tolist():
        d = decisions[k]
        rule.append(f"exception:{d.exception}" if d.exception else d.rule)
    columns["rule"] = rule
    return columns


FLOW_EXPORTS = (".csv", ".json", ".parquet")


def render_flows(result: Result, path: str) -> str:
    """The flow export as text (csv, or json when `path` ends in .json)."""
    columns = verdict_columns(result)
    if path.endswith(".json"):
        return render_json(columns, result.traffic)
    return render_csv(columns, result.traffic)


def write_flows(result: Result, path: str) -> None:
    """Write the flow export; Parquet (for DuckDB, Spark, ...) needs pyarrow."""
    try:
        if path.endswith(".parquet"):
            from portmatrix.lazy import require

            require("pyarrow", extra="parquet")
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table(verdict_columns(result)), path)
            return
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(render_flows(result, path))
    except OSError as exc:
        from portmatrix.errors import PortmatrixError

        raise PortmatrixError(
            f"cannot write: {exc.strerror or exc}", file=path, where="--flows"
        ) from None
