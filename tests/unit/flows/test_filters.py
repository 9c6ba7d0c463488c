"""Narrowing: time window, hosts, ports, verdicts, roles — on the demo capture,
whose flows and verdicts captures/README.md lists."""

from __future__ import annotations

import json

import pytest

from portmatrix.check import run_check
from portmatrix.errors import PortmatrixError
from portmatrix.flows.filters import FlowFilter
from portmatrix.flows.from_captures import read_traffic
from portmatrix.textforms import address_texts
from support import paths

DEMO, INV = str(paths.DEMO), str(paths.DEMO_INVENTORY)
START = "2024-03-01T10:00:00Z"  # the demo's first packet


@pytest.fixture(scope="module")
def traffic():
    return read_traffic([DEMO])


def kept(traffic, **options):
    f = FlowFilter(**options)
    return traffic.flows.take(f.traffic_mask(traffic.flows, traffic.first_ts))


def test_no_filter_keeps_everything(traffic):
    assert not FlowFilter().active
    assert len(kept(traffic)) == len(traffic.flows) == 40


def test_time_window_absolute_and_relative_agree(traffic):
    absolute = kept(traffic, since="2024-03-01T10:00:05Z", until="2024-03-01T10:00:07")
    relative = kept(traffic, since="+5s", until="+7s")
    assert len(absolute) == len(relative) > 0
    assert (absolute["first_ts"] == relative["first_ts"]).all()
    five = traffic.first_ts + 5 * 10**9
    assert (absolute["last_ts"] >= five).all() and (absolute["first_ts"] <= five + 2e9).all()
    # Everything that overlaps the window, nothing else.
    f = traffic.flows
    expect = (f["last_ts"] >= five) & (f["first_ts"] <= five + 2 * 10**9)
    assert len(absolute) == int(expect.sum())


def test_host_by_address_and_by_block(traffic):
    one = kept(traffic, hosts=("10.30.0.5",))
    ends = set(address_texts(one["init_hi"], one["init_lo"])) | set(
        address_texts(one["resp_hi"], one["resp_lo"])
    )
    assert "10.30.0.5" in ends and len(one) >= 3
    block = kept(traffic, hosts=("10.30.0.0/28",))
    assert len(block) == len(one)  # the only admin address in use
    none = kept(traffic, hosts=("fd00::/8",))
    assert len(none) == 0


def test_port_matches_either_end(traffic):
    ssh = kept(traffic, ports=(22,))
    assert len(ssh) > 0
    assert ((ssh["resp_port"] == 22) | (ssh["init_port"] == 22)).all()


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "+5 minutes"])
def test_bad_time_is_a_clear_error(traffic, text):
    with pytest.raises(PortmatrixError, match=r"is not a (time|duration)") as err:
        FlowFilter(since=text)  # before anything is read
    assert err.value.where == "--since"


def test_host_must_be_an_address(traffic):
    with pytest.raises(PortmatrixError, match="hostname"):
        FlowFilter(hosts=("example.com",))


def test_verdict_and_role_filters_narrow_the_report():
    result = run_check(
        [DEMO], ["thoughtspot"], INV, filters=FlowFilter(verdicts=("unexpected-port",))
    )
    assert result.verdict_counts() == {
        "allowed": 0,
        "wrong-direction": 0,
        "unexpected-source": 0,
        "unexpected-port": 3,
        "out-of-scope": 0,
    }
    assert {f.verdict for f in result.findings} == {"unexpected-port"}  # no coverage ones
    assert any("coverage of required services" in n for n in result.notices)
    admins = run_check([DEMO], ["thoughtspot"], INV, filters=FlowFilter(roles=("admins",)))
    assert sum(admins.verdict_counts().values()) >= 3
    assert all(
        "admins" in f.initiator_roles + f.responder_roles
        for f in admins.findings
        if f.kind == "flow"
    )


def test_time_window_keeps_coverage_findings():
    result = run_check([DEMO], ["thoughtspot"], INV, filters=FlowFilter(since=START))
    assert any(f.kind == "coverage" for f in result.findings)


def test_check_states_the_filters(run_cli, tmp_path):
    out = tmp_path / "r.json"
    result = run_cli(
        "check",
        DEMO,
        "--rules",
        "thoughtspot",
        "--inventory",
        INV,
        "--host",
        "10.30.0.5",
        "--port",
        "22",
        "--since",
        "+1s",
        "--format",
        "json",
        "--output",
        str(out),
    )
    assert result.exit_code == 1
    doc = json.loads(out.read_text())
    assert doc["inputs"]["filters"] == {"since": "+1s", "hosts": ["10.30.0.5"], "ports": [22]}
    text = run_cli(
        "check", DEMO, "--rules", "thoughtspot", "--inventory", INV, "--verdict", "wrong-direction"
    ).stdout
    assert "filters verdicts wrong-direction" in text


def test_flows_command_filters_too(run_cli):
    result = run_cli("flows", DEMO, "--port", "22", "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["filters"] == {"ports": [22]}
    assert doc["flows"] and all(
        22 in (f["initiator_port"], f["responder_port"]) for f in doc["flows"]
    )


def test_bad_filter_on_the_command_line_is_exit_2(run_cli):
    result = run_cli("flows", DEMO, "--since", "last tuesday")
    assert result.exit_code == 2
    assert result.stderr.startswith("portmatrix: error: --since: 'last tuesday' is not a time")
