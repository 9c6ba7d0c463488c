"""`check --flows FILE`: every flow, allowed or not, with its verdict and rule.

Columns after those of report/flow_rows.py:
  verdict      allowed, wrong-direction, unexpected-source, unexpected-port, out-of-scope
  rule         the rule (or exception:ID) that allows it, or the one it would need
  app          the application the flow's payload shows (portmatrix.apps: ssh, tls,
               http, ..., unidentified, no-payload); "" when it was not labelled (check
               labels the flows behind its findings; `flows --app` every flow, and adds
               this column and the next to its own)
  app_details  what the payload showed: "sni=admin.example.com alpn=h2", ...
"""

from __future__ import annotations

from portmatrix.policy.lookup import VERDICTS
from portmatrix.policy.roles import exception_rule
from portmatrix.report.flow_rows import by_value, flow_columns
from portmatrix.report.flows_view import render_csv, render_json
from portmatrix.report.result import JudgedFlows


def verdict_columns(result: JudgedFlows) -> dict[str, list]:
    captures = result.traffic.captures
    columns = flow_columns(result.traffic.flows, len(captures) > 1, captures)
    cls = result.classified
    decisions = cls.decisions
    columns["verdict"] = by_value(VERDICTS.__getitem__, cls.verdict)

    def rule(k: int) -> str:
        d = decisions[k]
        return exception_rule(d.exception) if d.exception else d.rule

    columns["rule"] = by_value(rule, cls.decision)
    columns.update(app_columns(getattr(result, "labels", None), len(cls.verdict)))
    return columns


def app_columns(labels, n: int) -> dict[str, list]:
    """`app` (the application label of a flow, from its payload: portmatrix.apps) and
    `app_details` (what it showed: "sni=... alpn=..."); "" for flows not labelled."""
    from portmatrix.apps.findings import detail_text

    app, details = [""] * n, [""] * n
    if labels is not None:  # a few labelled flows among many: no step for the others
        for k, f in enumerate(labels.flows.tolist()):
            app[f] = labels.labels[k]
            details[f] = detail_text("", labels.details[k]).strip()
    return {"app": app, "app_details": details}


FLOW_EXPORTS = (".csv", ".json", ".parquet")


def check_flow_export(path: str) -> None:
    """Before reading: the export's format must show in its name."""
    if not path.endswith(FLOW_EXPORTS):
        from portmatrix.errors import PortmatrixError

        raise PortmatrixError(
            f"the flow export must end in {', '.join(FLOW_EXPORTS)}", where="--flows", file=path
        )


def render_flows(result: JudgedFlows, path: str) -> str:
    """The flow export as text (csv, or json when `path` ends in .json)."""
    columns = verdict_columns(result)
    if path.endswith(".json"):
        return render_json(columns, result.traffic)
    return render_csv(columns, result.traffic)


def stage_flows(result: JudgedFlows, path: str, batch) -> None:
    """The flow export, staged in `batch` (files.Staged); Parquet (for DuckDB,
    Spark, ...) needs pyarrow."""
    if not path.endswith(".parquet"):
        batch.write_text(path, render_flows(result, path), "--flows")
        return
    from portmatrix.lazy import require

    require("pyarrow", extra="parquet")
    import pyarrow as pa
    import pyarrow.parquet as pq

    with batch.open(path, "wb", "--flows") as fh:
        pq.write_table(pa.table(verdict_columns(result)), fh)


def write_flows(result: JudgedFlows, path: str) -> None:
    """The flow export on its own, written atomically."""
    from portmatrix.files import staged

    with staged() as batch:
        stage_flows(result, path, batch)
