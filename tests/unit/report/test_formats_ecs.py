"""Every JSON line portmatrix writes for a SIEM is valid ECS: each field has the
type ECS declares (a checked-in subset of ECS 8.11, tests/support/ecs_fields.json),
categorisation fields take ECS's allowed values, and whatever is not ECS lives
under a custom namespace (labels, portmatrix)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from pathlib import Path

import pytest

from portmatrix.check import run_check
from portmatrix.report import formats
from portmatrix.report.flow_rows import flow_columns
from portmatrix.report.flows_view import render_jsonl
from support.paths import REPO

ECS = json.loads((Path(__file__).parents[2] / "support" / "ecs_fields.json").read_text())
DEMO = str(REPO / "captures" / "thoughtspot-demo.pcap")
INVENTORY = str(REPO / "captures" / "thoughtspot-demo.inventory.yaml")


def flat(doc: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in doc.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and name.split(".")[0] not in ECS["custom"]:
            out |= flat(v, name + ".")
        else:
            out[name] = v
    return out


def of_type(value, kind: str) -> bool:
    if kind == "long":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "date":
        return isinstance(value, str) and bool(dt.datetime.fromisoformat(value))
    if kind == "ip":
        return isinstance(value, str) and bool(ipaddress.ip_address(value))
    return isinstance(value, str) and value != ""  # keyword, text


def check_event(event: dict) -> None:
    fields = flat(event)
    assert fields["@timestamp"], "Elastic data streams need @timestamp"
    for name, value in fields.items():
        if name.split(".")[0] in ECS["custom"]:
            continue
        assert name in ECS["fields"], f"{name} is not an ECS field"
        values = value if isinstance(value, list) else [value]
        assert values and all(of_type(v, ECS["fields"][name]) for v in values), (name, value)
        for v in values:
            assert v in ECS["allowed_values"].get(name, [v]), (name, v)


@pytest.fixture(scope="module")
def demo():
    return run_check([DEMO], ["thoughtspot"], INVENTORY)


def test_check_jsonl_is_ecs(demo):
    demo.created = "2026-01-01T00:00:00Z"
    lines = formats.render_jsonl(demo).splitlines()
    assert len(lines) == len(demo.findings)
    for line in lines:
        check_event(json.loads(line))
    events = [json.loads(line) for line in lines]
    assert {e["event"]["outcome"] for e in events} == {"success", "failure", "unknown"}
    assert all(e["observer"]["hostname"] for e in events)


def test_watch_lines_are_ecs_with_the_observer(demo):
    for f in demo.findings:
        event = formats.ecs_finding(
            f.to_dict(),
            "thoughtspot",
            when="2026-01-01T00:00:00.000000Z",
            observer=formats.observer(["eth1", "eth2"]),
        )
        check_event(event)
        assert event["observer"]["ingress"]["interface"]["name"] == "eth1,eth2"
        assert event["@timestamp"]  # coverage findings too


def test_flows_jsonl_is_ecs(demo):
    traffic = demo.traffic
    columns = flow_columns(traffic.flows, False, traffic.captures)
    lines = render_jsonl(columns, traffic).splitlines()
    assert len(lines) == len(traffic.flows)
    for line in lines:
        check_event(json.loads(line))
