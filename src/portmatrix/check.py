"""`portmatrix check` as a library call: load the matrix and inventory, read the
traffic, classify, build findings and coverage, apply a baseline.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace

import numpy as np

from portmatrix.addresses import to_text
from portmatrix.errors import PortmatrixError
from portmatrix.findings.coverage import coverage
from portmatrix.findings.expired import matrix_findings
from portmatrix.findings.grouping import flow_findings
from portmatrix.findings.model import Coverage, Finding, JudgedResult, sort_findings
from portmatrix.flows.filters import FlowFilter
from portmatrix.flows.from_captures import read_traffic
from portmatrix.flows.traffic import Traffic
from portmatrix.policy.classify import Classified, classify
from portmatrix.policy.inventory import Inventory, load_inventory
from portmatrix.policy.lookup import VERDICTS, RuleIndex
from portmatrix.policy.matrix import Matrix, load_matrix
from portmatrix.policy.roles import RoleMap, build_role_map


@dataclass
class Result(JudgedResult):
    traffic: Traffic
    matrix: Matrix
    inventory: Inventory | None
    role_map: RoleMap
    index: RuleIndex
    classified: Classified
    findings: list[Finding]  # new findings (not in the baseline)
    coverage: list[Coverage]
    known: int = 0  # findings suppressed because the baseline has them
    notices: list[str] = field(default_factory=list)
    filters: FlowFilter = field(default_factory=lambda: FlowFilter())

    def verdict_counts(self) -> dict[str, int]:
        return self.classified.counts()


def load_baseline(path: str) -> set[str]:
    """Finding ids of a previous JSON report."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise PortmatrixError(
            "no such file", file=path, hint="give a previous `check --format json` report"
        ) from None
    except json.JSONDecodeError as exc:
        raise PortmatrixError(
            f"not JSON ({exc.msg})",
            file=path,
            where=f"line {exc.lineno}",
            hint="give a previous `check --format json` report",
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("findings"), list):
        raise PortmatrixError(
            "no `findings` list", file=path, hint="give a previous `check --format json` report"
        )
    return {f["id"] for f in doc["findings"] if isinstance(f, dict) and "id" in f}


def run_check(
    captures: list[str],
    rules: list[str],
    inventory: str | None,
    baseline: str | None = None,
    today: dt.date | None = None,
    on_batch=None,
    jobs: int = 1,
    dask: str | None = None,
    filters: FlowFilter | None = None,
    zeek: bool = False,
) -> Result:
    """`captures` are capture files, or Zeek conn.log files when `zeek`."""
    # Inputs that are cheap to check fail before the long read.
    matrix = load_matrix(rules)
    inv = load_inventory(inventory, matrix) if inventory else None
    known_ids = load_baseline(baseline) if baseline else set()
    if zeek:
        from portmatrix.records.zeek import read_conn_logs

        traffic = read_conn_logs(captures)
    else:
        wanted = build_role_map(matrix, inv).hostnames  # to learn from DNS answers
        traffic = read_traffic(captures, on_batch=on_batch, jobs=jobs, dask=dask, wanted=wanted)
    return evaluate(traffic, matrix, inv, known_ids, today, filters)


def evaluate(
    traffic: Traffic,
    matrix: Matrix,
    inv: Inventory | None,
    known_ids: set[str] | frozenset[str] = frozenset(),
    today: dt.date | None = None,
    filters: FlowFilter | None = None,
) -> Result:
    role_map = build_role_map(matrix, inv, traffic.dns_names)
    index = RuleIndex(matrix, today)
    filters = filters or FlowFilter()
    traffic = traffic.narrowed(filters)
    cls = classify(traffic.flows, index, role_map)
    if filters.verdicts or filters.roles:
        keep = _judged_mask(cls, role_map, filters)
        traffic = replace(traffic, flows=traffic.flows.take(keep))
        cls = cls.take(keep)
    notices = traffic.notices()
    findings = flow_findings(
        traffic.flows, cls, role_map, index, several_files=len(traffic.captures) > 1
    )
    cov, cov_findings = coverage(traffic.flows, cls, matrix, traffic.weakened)
    if filters.narrows_services:
        cov_findings = []
        notices.append(
            "filtered by host, port, verdict or role: the coverage of required "
            "services is shown for the chosen flows only, without findings"
        )
    findings += cov_findings + matrix_findings(matrix, index)
    notices += _role_notices(matrix, inv, role_map, sum(c.dns_unread for c in traffic.captures))
    findings = sort_findings(findings)
    new = [f for f in findings if f.id not in known_ids]
    return Result(
        traffic,
        matrix,
        inv,
        role_map,
        index,
        cls,
        new,
        cov,
        known=len(findings) - len(new),
        notices=notices,
        filters=filters,
    )


def _judged_mask(cls: Classified, role_map: RoleMap, filters: FlowFilter) -> np.ndarray:
    keep = np.ones(len(cls.verdict), bool)
    if filters.verdicts:
        codes = [VERDICTS.index(v) for v in filters.verdicts]
        keep &= np.isin(cls.verdict, codes)
    if filters.roles:
        wanted = set(filters.roles)
        sets = range(len(role_map.index.sets))
        holds = np.array([bool(wanted & role_map.roles_of(i)) for i in sets])
        keep &= holds[cls.init_roles] | holds[cls.resp_roles]
    return keep


def _role_notices(
    matrix: Matrix, inv: Inventory | None, role_map: RoleMap, dns_unread: int = 0
) -> list[str]:
    """Roles whose rules cannot match anything, and hostnames resolved from the
    capture's DNS answers, in one sentence each kind."""
    if inv is None:
        return ["no inventory given: only addresses fixed by the matrix hold roles"]
    out = []
    held = set().union(*role_map.index.sets)
    used = {r.from_role for r in matrix.rules} | {r.to_role for r in matrix.rules}
    empty = sorted(r for r in used if r in matrix.roles and r not in held)
    if empty:
        out.append(
            f"roles with no address in {inv.file}: {', '.join(empty)} — their rules "
            "cannot match and their services cannot be checked"
        )
    names = sorted(
        n
        for role, ns in role_map.unresolved.items()
        if not role.startswith("exception:")
        for n in ns
    )
    if names:
        unread = (
            f"; {dns_unread} DNS responses (over TCP, in tunnels or fragmented) were not read"
            if dns_unread
            else ""
        )
        out.append(
            f"hostnames with no known address: {', '.join(names)} — add them under "
            f"`hosts:` in the inventory, or capture the clients' DNS lookups too{unread}"
        )
    if role_map.learned:
        learned = "; ".join(
            f"{name} → {', '.join(to_text(a) for a in addrs[:3])}"
            + (f" and {len(addrs) - 3} more" if len(addrs) > 3 else "")
            for name, addrs in sorted(role_map.learned.items())
        )
        out.append(f"hostnames resolved from DNS answers in the capture: {learned}")
    return out
