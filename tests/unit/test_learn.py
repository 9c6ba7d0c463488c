"""`portmatrix learn` on generated cluster traffic: a draft from known-good traffic
allows in other traffic exactly what the vendor matrix allows there; the
learning input passes its own draft; a base matrix leaves an additions file;
hosts with no role give a self-contained draft."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from portmatrix.check import run_check
from portmatrix.policy.classify import ALLOWED
from portmatrix.policy.inventory import load_inventory
from portmatrix.policy.lint import lint
from portmatrix.policy.matrix import collect_matrix, load_matrix
from support.cluster import SECOND, T0, Flow, allowed_flows, write_capture, write_site
from support.paths import REPO

VIOLATIONS = [
    Flow("tcp", "10.40.1.7", "10.20.0.12", 22, T0 + 5 * SECOND),  # unexpected-source
    Flow("tcp", "10.20.0.11", "10.30.0.5", 22, T0 + 6 * SECOND),  # wrong-direction
    Flow("tcp", "10.40.3.9", "10.20.0.13", 8443, T0 + 7 * SECOND),  # unexpected-port
    Flow("tcp", "10.20.0.12", "198.51.100.77", 6667, T0 + 8 * SECOND),  # to no role
    Flow("tcp", "10.30.0.5", "10.20.0.14", 5432, T0 + 9 * SECOND),  # unexpected-source
    Flow("udp", "203.0.113.5", "10.20.0.15", 161, T0 + 10 * SECOND),  # unexpected-port
    Flow("udp", "10.20.0.16", "10.50.0.123", 514, T0 + 11 * SECOND),  # unexpected-port
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A site, a known-good capture of it, and a different capture with violations."""
    folder = tmp_path_factory.mktemp("cluster")
    vendor = load_matrix(["thoughtspot"])
    good = write_capture(folder / "good.pcap", allowed_flows(vendor, seed=1), seed=1)
    second = allowed_flows(vendor, seed=2, per_rule=2, pool_flows=30) + VIOLATIONS
    other = write_capture(folder / "second.pcap", second, seed=2)
    return folder, write_site(folder), good, other


def learned(run_cli, *args) -> None:
    result = run_cli("learn", *map(str, args), "--quiet")
    assert result.exit_code == 0, result.stderr


def allowed(capture, rules, site) -> np.ndarray:
    result = run_check([str(capture)], [str(r) for r in rules], str(site))
    return result.classified.verdict == ALLOWED


def test_a_draft_from_good_traffic_allows_what_the_vendor_matrix_allows_elsewhere(run_cli, cluster):
    folder, site, good, other = cluster
    draft = folder / "draft.yaml"
    learned(run_cli, good, "--inventory", site, "-o", draft)
    by_vendor = allowed(other, ["thoughtspot"], site)
    by_draft = allowed(other, [draft], site)
    assert by_draft.tolist() == by_vendor.tolist()
    assert int((~by_draft).sum()) == len(VIOLATIONS)
    check = run_check([str(other)], [str(draft)], str(site))
    flagged = sorted((f.initiator, f.responder, f.port) for f in check.findings if f.kind == "flow")
    assert flagged == sorted((v.client, v.server, v.port) for v in VIOLATIONS)


def test_the_learning_input_passes_its_own_draft(run_cli, cluster):
    folder, site, good, _ = cluster
    draft = folder / "own.yaml"
    learned(run_cli, good, "--inventory", site, "-o", draft)
    result = run_check([str(good)], [str(draft)], str(site))
    assert result.findings == []
    assert set(result.verdict_counts()) and result.verdict_counts()["allowed"] == len(
        result.traffic.flows
    )
    m = collect_matrix([str(draft)])
    assert lint(m, load_inventory(str(site), m), dt.date.today()) == []


def test_with_the_vendor_matrix_as_base_the_draft_holds_only_the_additions(run_cli, cluster):
    folder, site, _, other = cluster
    draft = folder / "additions.yaml"
    learned(run_cli, other, "--inventory", site, "--rules", "thoughtspot", "-o", draft)
    m = load_matrix([str(draft)])
    taught = {(r.from_role, r.to_role, r.proto, r.ports) for r in m.rules}
    assert taught == {
        ("users", "nodes", "tcp", ((22, 22),)),
        ("nodes", "admins", "tcp", ((22, 22),)),
        ("users", "nodes", "tcp", ((8443, 8443),)),
        ("nodes", "host-198-51-100-77", "tcp", ((6667, 6667),)),
        ("admins", "nodes", "tcp", ((5432, 5432),)),
        ("support", "nodes", "udp", ((161, 161),)),
        ("nodes", "ntp-server", "udp", ((514, 514),)),
    }
    layered = run_check([str(other)], ["thoughtspot", str(draft)], str(site))
    assert layered.findings == []
    stack = collect_matrix(["thoughtspot", str(draft)])
    assert [p for p in lint(stack, None, dt.date.today()) if p.severity == "error"] == []
    # the draft also loads alone: it copies the roles of its base
    assert set(load_matrix([str(draft)]).roles) >= set(load_matrix(["thoughtspot"]).roles)


def test_hosts_with_no_role_give_a_self_contained_draft(run_cli, cluster, tmp_path):
    _, site, _, _ = cluster
    vendor = load_matrix(["thoughtspot"])
    monitors = [f"10.60.0.{i}" for i in (5, 6, 7, 9)]
    extra = [
        Flow("tcp", monitors[k % 4], f"10.20.0.{11 + k % 6}", 9100, T0 + k * SECOND)
        for k in range(12)
    ] + [Flow("udp", "10.20.0.11", "192.0.2.53", 53, T0 + 20 * SECOND)]
    capture = write_capture(tmp_path / "mixed.pcap", allowed_flows(vendor, seed=3) + extra, seed=3)
    draft = tmp_path / "draft.yaml"
    learned(run_cli, capture, "--inventory", site, "-o", draft)
    m = load_matrix([str(draft)])
    assert {n: [e.text for e in r.entries] for n, r in m.roles.items() if r.entries} == {
        "net-10-60-0-0-28": ["10.60.0.0/28"],
        "host-192-0-2-53": ["192.0.2.53"],
    }
    assert run_check([str(capture)], [str(draft)], str(site)).findings == []
    lint_result = run_cli("rules", "lint", str(draft), "--inventory", str(site))
    assert lint_result.exit_code == 0, lint_result.stdout


def test_learn_reads_zeek_conn_logs(run_cli, tmp_path):
    log = REPO / "tests" / "fixtures" / "zeek" / "violations-small.conn.log"
    inventory = REPO / "captures" / "violations-small.inventory.yaml"
    draft = tmp_path / "zeek.yaml"
    learned(run_cli, "--zeek", log, "--inventory", inventory, "-o", draft)
    from_log = load_matrix([str(draft)])
    from_pcap = tmp_path / "pcap.yaml"
    learned(
        run_cli,
        REPO / "captures" / "violations-small.pcap",
        "--inventory",
        inventory,
        "-o",
        from_pcap,
    )
    rules = [(r.id, r.ports, r.from_role, r.to_role) for r in from_log.rules]
    assert rules and rules == [
        (r.id, r.ports, r.from_role, r.to_role) for r in load_matrix([str(from_pcap)]).rules
    ]
