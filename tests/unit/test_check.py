"""check as a library call: exit status from --fail-on, baselines, the order in
which inputs are checked, and findings in severity order."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from portmatrix.check import evaluate, load_baseline, run_check
from portmatrix.errors import CaptureError, MatrixError, PortmatrixError
from portmatrix.report.formats import render_json
from portmatrix.testing.captures import ether, ip, tcp_session, write_pcap
from support.packets import refused
from support.site import ADMIN, N1, N2, USER

TODAY = dt.date(2025, 1, 1)


def healthy():
    """Both required rules of the small site established: no coverage finding."""
    from scapy.layers.inet import UDP

    return tcp_session(N1, N2, 40000, 7000) + [
        ip(N1, N2) / UDP(sport=40001, dport=7946) / b"ping",
        ip(N2, N1) / UDP(sport=7946, dport=40001) / b"pong",
    ]


@pytest.mark.parametrize(
    ("packets", "counts", "codes"),
    [
        (healthy(), {"error": 0, "warning": 0, "info": 0}, (0, 0, 0)),
        (
            healthy() + refused(ADMIN, N1, 40002, 22),  # optional rule blocked: warning
            {"error": 0, "warning": 1, "info": 0},
            (0, 1, 0),
        ),
        (
            healthy() + refused(USER, N1, 40002, 8443),  # forbidden and blocked: info
            {"error": 0, "warning": 0, "info": 1},
            (0, 0, 0),
        ),
        (
            healthy() + tcp_session(USER, N1, 40002, 8443),  # forbidden and through
            {"error": 1, "warning": 0, "info": 0},
            (1, 1, 0),
        ),
    ],
    ids=["clean", "warning", "info", "error"],
)
def test_exit_code_follows_fail_on(check_packets, packets, counts, codes):
    result = check_packets(packets)
    assert result.severity_counts() == counts
    assert tuple(result.exit_code(f) for f in ("error", "warning", "never")) == codes


def test_findings_come_by_severity(check_packets):
    packets = (
        refused(USER, N1, 40002, 9443)
        + refused(ADMIN, N1, 40003, 22)
        + tcp_session(USER, N2, 40004, 8443)
    )
    result = check_packets(packets)
    severities = [f.severity for f in result.findings]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)
    assert set(severities) == {"error", "warning", "info"}
    # Flow findings before coverage findings of the same severity.
    errors = [f.kind for f in result.findings if f.severity == "error"]
    assert errors == sorted(errors, key=lambda k: k != "flow")


def test_baseline_hides_known_findings(check_packets, tmp_path):
    first = check_packets(tcp_session(USER, N1, 40000, 8443))
    baseline = tmp_path / "baseline.json"
    baseline.write_text(render_json(first), encoding="utf-8")
    ids = {f.id for f in first.findings}
    assert load_baseline(str(baseline)) == ids
    # Another day: the same problem from another client port and towards another node
    # (users reaching tcp/8443 on nodes), and a new one (tcp/9443).
    packets = (
        tcp_session(USER, N1, 51000, 8443)
        + tcp_session(USER, N2, 51001, 8443)
        + tcp_session(USER, N2, 51002, 9443)
    )
    again = check_packets(packets, name="d.pcap", baseline=str(baseline))
    assert [(f.verdict, f.port) for f in again.findings] == [("unexpected-port", 9443)]
    assert again.known == len(ids)
    assert again.exit_code("error") == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not JSON"),
        ("[]", "no `findings` list"),
        ('{"findings": 3}', "no `findings` list"),
    ],
)
def test_malformed_baseline(tmp_path, content, message):
    path = tmp_path / "old.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PortmatrixError) as caught:
        load_baseline(str(path))
    assert caught.value.file == str(path)
    assert message in str(caught.value)
    assert "previous `check --format json` report" in str(caught.value)


def test_missing_baseline(tmp_path):
    with pytest.raises(PortmatrixError, match="no such file"):
        load_baseline(str(tmp_path / "none.json"))


def test_cheap_inputs_are_checked_before_the_capture(tmp_path, write_yaml, site):
    small = site()
    missing = str(tmp_path / "missing.pcap")
    bad_inventory = write_yaml("inv.yaml", "roles:\n  dbas: [10.0.0.9]\n")
    with pytest.raises(MatrixError) as caught:
        run_check([missing], [str(small.matrix)], str(bad_inventory))
    assert caught.value.file == str(bad_inventory)
    with pytest.raises(PortmatrixError, match="not JSON"):
        (tmp_path / "b.json").write_text("{", encoding="utf-8")
        run_check(
            [missing], [str(small.matrix)], str(small.inventory), baseline=str(tmp_path / "b.json")
        )
    with pytest.raises(CaptureError):
        run_check([missing], [str(small.matrix)], str(small.inventory))


def test_evaluate_without_inventory_says_so(tmp_path, site):
    small = site()
    path = write_pcap(tmp_path / "c.pcap", [ether(p) for p in tcp_session(USER, N1, 40000, 443)])
    from portmatrix.flows.from_captures import read_traffic
    from portmatrix.policy.matrix import load_matrix

    result = evaluate(read_traffic([str(path)]), load_matrix([str(small.matrix)]), None)
    assert result.notices == [
        "roles with no address (no inventory given: only the matrix's own): admins, nodes, "
        "users — their rules cannot match; required rules not evaluated: node-rpc, "
        "node-gossip — give --inventory"
    ]
    assert {c.rule: c.status for c in result.coverage if c.required} == {
        "node-rpc": "not-evaluated",
        "node-gossip": "not-evaluated",
    }
    assert not [f for f in result.findings if f.kind == "coverage"]  # never missing-required
    assert result.classified.counts()["out-of-scope"] == 1
    assert json.loads(render_json(result))["inputs"]["inventory"] is None


def test_role_without_addresses_is_a_notice(tmp_path, write_yaml, site):
    small = site()
    inventory = write_yaml("inv.yaml", "roles:\n  nodes: [10.0.0.1-10.0.0.3]\n")
    path = write_pcap(tmp_path / "c.pcap", [ether(p) for p in healthy()])
    result = run_check([str(path)], [str(small.matrix)], str(inventory), today=TODAY)
    assert any(
        n.startswith(f"roles with no address in {inventory}: admins, users") for n in result.notices
    )


def test_a_hostile_baseline_is_one_clear_error_or_its_string_ids(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_bytes(b'{"findings": [{"id": "PM-1\xff"}]}')
    with pytest.raises(PortmatrixError, match=r"not text \(UTF-8\)"):
        load_baseline(str(path))
    findings = [{"id": ["PM-1"]}, {"id": 7}, {"id": {"a": 1}}, "PM-2", None, {"id": "PM-3"}]
    path.write_text(json.dumps({"findings": findings}))
    assert load_baseline(str(path)) == {"PM-3"}
    path.write_text("[" * 100_000 + "]" * 100_000)  # nested past the JSON parser's depth
    with pytest.raises(PortmatrixError, match="nested too deep"):
        load_baseline(str(path))
