"""What-if: every flow judged under the current matrix and another; the changes
grouped (would break, would forbid, would allow), the coverage compared."""

from __future__ import annotations

from importlib import resources

import yaml

from portmatrix.check import run_check
from support.paths import CAPTURES

DEMO = str(CAPTURES / "thoughtspot-demo.pcap")
INVENTORY = str(CAPTURES / "thoughtspot-demo.inventory.yaml")
REMOVED = ("ssh-from-admins", "https-from-users", "tomcat", "falcon-http-from-admins")


def stricter(tmp_path, drop=REMOVED, **changes) -> str:
    text = (resources.files("portmatrix") / "rules" / "thoughtspot.yaml").read_text("utf-8")
    doc = yaml.safe_load(text)
    doc["rules"] = [r for r in doc["rules"] if r["id"] not in drop]
    for rule_id, fields in changes.items():
        next(r for r in doc["rules"] if r["id"] == rule_id.replace("_", "-")).update(fields)
    path = tmp_path / "strict.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return str(path)


def changes(result):
    return [
        (
            c.change,
            c.severity,
            c.initiator_roles,
            c.responder_roles,
            c.proto,
            c.port,
            c.flows,
            c.examples,
        )
        for c in result.what_if.changes
    ]


def test_what_if_lists_the_flows_a_stricter_draft_would_break(tmp_path):
    result = run_check([DEMO], ["thoughtspot"], INVENTORY, what_if=[stricter(tmp_path)])
    assert changes(result) == [
        (
            "would-break",
            "error",
            ["users"],
            ["nodes"],
            "tcp",
            443,
            2,
            ["10.40.1.7 → 10.20.0.11", "10.40.2.20 → 10.20.0.12"],
        ),
        ("would-break", "error", ["admins"], ["nodes"], "tcp", 22, 1, ["10.30.0.5 → 10.20.0.11"]),
        ("would-break", "error", ["nodes"], ["nodes"], "tcp", 8080, 1, ["10.20.0.12 → 10.20.0.11"]),
        ("would-forbid", "info", ["admins"], ["nodes"], "tcp", 4001, 1, ["10.30.0.5 → 10.20.0.13"]),
    ]
    broken = result.what_if.changes[0]
    # 443 on nodes stays open to support: users become an unexpected source
    assert (broken.now, broken.now_rule, broken.draft, broken.draft_rule) == (
        "allowed",
        "https-from-users",
        "unexpected-source",
        "nginx-https-intracluster, https-from-support",
    )
    assert result.what_if.coverage == []
    assert result.what_if.verdicts["allowed"] == result.verdict_counts()["allowed"] - 5
    # the findings of the check itself do not change
    assert [f.id for f in result.findings] == [
        f.id for f in run_check([DEMO], ["thoughtspot"], INVENTORY).findings
    ]


def test_coverage_that_would_change_is_listed(tmp_path):
    # the draft no longer requires postgres (refused today), and requires
    # memcached (established today: no problem either way, not listed)
    strict = stricter(tmp_path, drop=(), postgres={"required": False}, memcached={"required": True})
    result = run_check([DEMO], ["thoughtspot"], INVENTORY, what_if=[strict])
    assert changes(result) == []
    assert [(c.rule, c.now, c.draft, c.severity) for c in result.what_if.coverage] == [
        ("postgres", "required-unreachable", "not required", "info"),
    ]
    # a required rule that works today and is gone from the draft: its flows
    # would break; its coverage is no problem on either side, so not listed
    gone = stricter(tmp_path, drop=("sage-rpc",))
    result = run_check([DEMO], ["thoughtspot"], INVENTORY, what_if=[gone])
    assert [(c.change, c.port) for c in result.what_if.changes] == [
        ("would-break", 4232),
        ("would-break", 4251),
    ]
    assert result.what_if.coverage == []


def test_a_required_rule_the_draft_adds_and_nothing_exercises_is_a_warning(tmp_path):
    strict = stricter(tmp_path, drop=(), ssh_from_support={"required": True, "ports": 2222})
    result = run_check([DEMO], ["thoughtspot"], INVENTORY, what_if=[strict])
    assert [(c.rule, c.now, c.draft, c.severity) for c in result.what_if.coverage] == [
        ("ssh-from-support", "not required", "missing-required", "warning")
    ]
    assert [(c.change, c.port) for c in result.what_if.changes] == [("would-break", 22)]


def test_a_draft_that_allows_more_lists_what_it_would_allow(tmp_path, write_yaml):
    extra = write_yaml(
        "extra.yaml",
        """
        name: extra
        rules:
          - {id: users-8443, service: x, proto: tcp, ports: 8443, from: users, to: nodes}
          - {id: users-22, service: x, proto: tcp, ports: 22, from: users, to: nodes}
        """,
    )
    result = run_check([DEMO], ["thoughtspot"], INVENTORY, what_if=["thoughtspot", str(extra)])
    assert [
        (c.change, c.severity, c.port, c.now, c.draft_rule) for c in result.what_if.changes
    ] == [
        ("would-allow", "warning", 8443, "unexpected-port", "users-8443"),
        ("would-allow", "info", 22, "unexpected-source", "users-22"),  # refused anyway
    ]
    assert result.what_if.severity_counts() == {"error": 0, "warning": 1, "info": 1}
    assert result.exit_code("warning") == 1
    assert (
        run_check([DEMO], ["thoughtspot"], INVENTORY, what_if=["thoughtspot"]).what_if.changes == []
    )
