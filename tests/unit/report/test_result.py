"""The Result protocols the reports render: the offline check's result and a
watch's result both answer every member, and no report imports either of them
(the contract points down)."""

from __future__ import annotations

import ast
import inspect

import pytest

from portmatrix.check import run_check
from portmatrix.decode import decode
from portmatrix.report import result as protocols
from portmatrix.sources.capture import Capture
from portmatrix.watch.watcher import Watcher
from support.paths import DEMO, DEMO_INVENTORY, REPO


def members(protocol) -> set[str]:
    """The attributes and methods a protocol declares, its bases' included."""
    out = set()
    for cls in protocol.__mro__:
        if not getattr(cls, "_is_protocol", False):
            continue
        out |= set(inspect.get_annotations(cls))
        out |= {
            name
            for name, value in cls.__dict__.items()
            if inspect.isfunction(value) and not name.startswith("_")
        }
    return out


@pytest.fixture(scope="module")
def checked():
    return run_check([str(DEMO)], ["thoughtspot"], str(DEMO_INVENTORY))


@pytest.fixture(scope="module")
def watched(checked):
    watcher = Watcher(checked.matrix, checked.inventory)
    for raw in Capture(str(DEMO)).batches():
        watcher.add(*decode(raw))
    return watcher.finish()


def assert_answers(obj, protocol) -> None:
    missing = sorted(m for m in members(protocol) if not hasattr(obj, m))
    assert missing == [], f"{type(obj).__name__} lacks {missing} of {protocol.__name__}"


def test_the_protocols_declare_what_reports_read():
    assert {"findings", "coverage", "traffic", "verdict_counts", "severity_counts"} <= members(
        protocols.Result
    )
    assert {"counts", "packets", "weakened"} <= members(protocols.TrafficSummary)
    assert members(protocols.FlowTraffic) == members(protocols.TrafficSummary) | {"flows"}
    assert {"classified", "traffic"} <= members(protocols.JudgedFlows)


@pytest.mark.parametrize("kind", ["check", "watch"])
def test_both_results_answer_the_result_protocol(request, kind):
    result = request.getfixturevalue({"check": "checked", "watch": "watched"}[kind])
    assert_answers(result, protocols.Result)
    assert_answers(result.traffic, protocols.TrafficSummary)
    assert sum(result.verdict_counts().values()) == result.traffic.flow_count == 40
    # Each problem once: findings that are part of a coverage finding are not counted.
    assert sum(result.severity_counts().values()) == sum(f.part_of is None for f in result.findings)


def test_the_check_result_also_keeps_its_flows(checked):
    assert_answers(checked, protocols.JudgedFlows)
    assert_answers(checked.traffic, protocols.FlowTraffic)
    assert len(checked.classified.verdict) == len(checked.traffic.flows) == 40


def test_no_report_imports_a_command():
    commands = ("portmatrix.check", "portmatrix.watch", "portmatrix.evidence", "portmatrix.cli")
    found = []
    for path in sorted((REPO / "src" / "portmatrix" / "report").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            found += [f"{path.name}: {n}" for n in names if n.startswith(commands)]
    assert found == []
