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
    # would break, and it would no longer be checked: listed, as information
    gone = stricter(tmp_path, drop=("sage-rpc",))
    result = run_check([DEMO], ["thoughtspot"], INVENTORY, what_if=[gone])
    assert [(c.change, c.port) for c in result.what_if.changes] == [
        ("would-break", 4232),
        ("would-break", 4251),
    ]
    assert [(c.rule, c.now, c.draft, c.severity) for c in result.what_if.coverage] == [
        ("sage-rpc", "ok", "absent", "info"),
    ]


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


PROBLEMS = {"missing-required", "required-unreachable"}


def statuses(result) -> dict[str, str]:
    """Each rule's coverage status as `check` gives it: "not required" for a rule
    that is not."""
    return {c.rule: c.status if c.required else "not required" for c in result.coverage}


def assert_agrees_with_check(result, today, draft):
    """The what-if's coverage lists exactly the rules whose status differs between
    `check` by today's matrix and `check` by the draft, where either is a problem
    or the draft stops requiring a rule that is ok today, with check's own
    statuses on both sides."""
    now, then = statuses(today), statuses(draft)
    expected = []
    for rule in sorted(set(now) | set(then)):
        old, new = now.get(rule, "absent"), then.get(rule, "absent")
        dropped = old == "ok" and new in ("absent", "not required")
        if old != new and ({old, new} & PROBLEMS or dropped):
            expected.append((rule, old, new))
    assert [(c.rule, c.now, c.draft) for c in result.what_if.coverage] == expected


SITE = """
name: site
roles:
  aws-dns: {description: The Amazon DNS server}
  logs: {description: The syslog server}
rules:
  - {id: dns, service: DNS, proto: udp, ports: 53, from: nodes, to: aws-dns, required: true}
  - {id: dhcp, service: DHCP, proto: udp, ports: [67, 68], from: nodes, to: any, required: true}
  - {id: syslog, service: syslog, proto: udp, ports: 514, from: nodes, to: logs, required: true}
"""
SITE_INVENTORY = """
roles:
  nodes: [10.20.0.11-10.20.0.13]
  admins: [10.30.0.0/28]
  users: [10.40.0.0/16]
  aws-dns: [169.254.169.253]
  logs: [10.50.0.9]
"""


def test_what_if_coverage_on_a_flow_log_is_checks_own(tmp_path, write_yaml):
    # AWS never logs the Amazon DNS server nor DHCP: check says not-observable, and
    # so must the what-if — never "missing" today, never "would be missing".
    from support import flowlogs as fl

    site = str(write_yaml("site.yaml", SITE))
    inventory = str(write_yaml("inv.yaml", SITE_INVENTORY))
    capture = run_check([str(CAPTURES / "violations-small.pcap")], ["thoughtspot", site], inventory)
    log = str(fl.write_aws(tmp_path / "f.log", fl.logged(capture.traffic.flows)))
    relaxed = write_yaml(
        "relaxed.yaml",
        SITE.replace("required: true", "required: false").replace("name: site", "name: relaxed"),
    )
    for rules, draft in (
        (["thoughtspot", site], ["thoughtspot", str(relaxed)]),  # no longer required
        (["thoughtspot", str(relaxed)], ["thoughtspot", site]),  # newly required
    ):
        result = run_check([log], rules, inventory, records="auto", what_if=draft)
        today = run_check([log], rules, inventory, records="auto")
        by_draft = run_check([log], draft, inventory, records="auto")
        assert {statuses(today)[r] for r in ("dns", "dhcp")} <= {"not-observable", "not required"}
        assert_agrees_with_check(result, today, by_draft)
        listed = {c.rule for c in result.what_if.coverage}
        assert "syslog" in listed and not listed & {"dns", "dhcp"}


def test_what_if_coverage_in_a_window_with_no_traffic_is_not_evaluated(tmp_path):
    # A time window holding none of the capture: check evaluates no coverage, nor
    # may the what-if (which would call every required rule missing).
    from portmatrix.flows.filters import FlowFilter

    window = FlowFilter(since="2001-01-01T00:00:00Z", until="2001-01-02T00:00:00Z")
    strict = stricter(tmp_path, drop=(), postgres={"required": False}, memcached={"required": True})
    result = run_check([DEMO], ["thoughtspot"], INVENTORY, what_if=[strict], filters=window)
    today = run_check([DEMO], ["thoughtspot"], INVENTORY, filters=window)
    by_draft = run_check([DEMO], [strict], INVENTORY, filters=window)
    assert set(statuses(today).values()) == {"not-evaluated", "not required"}
    assert_agrees_with_check(result, today, by_draft)
    assert result.what_if.coverage == []
    # and on the whole capture, the two agree too (postgres is refused today)
    result = run_check([DEMO], ["thoughtspot"], INVENTORY, what_if=[strict])
    today = run_check([DEMO], ["thoughtspot"], INVENTORY)
    by_draft = run_check([DEMO], [strict], INVENTORY)
    assert_agrees_with_check(result, today, by_draft)
    assert [c.rule for c in result.what_if.coverage] == ["postgres"]


def test_examples_are_the_first_distinct_pairs_of_each_group():
    # against the obvious reference: every pair written out, the first three
    # distinct ones of each group kept
    import numpy as np

    from portmatrix.findings.whatif import EXAMPLES, _examples
    from portmatrix.textforms import address_texts
    from support.paths import capture_path

    dns = str(capture_path("PcapPlusPlus__DnsPackets.pcap"))
    flows = run_check([dns], ["thoughtspot"], None).traffic.flows
    n = len(flows)
    assert n > 20
    group = np.sort(np.arange(n) % 3)
    rows = np.argsort(flows["resp_lo"], kind="stable")  # any order of the rows within groups
    rows = rows[np.argsort(group[rows], kind="stable")]
    group = group[np.argsort(group, kind="stable")]
    init = address_texts(flows["init_hi"][rows], flows["init_lo"][rows])
    resp = address_texts(flows["resp_hi"][rows], flows["resp_lo"][rows])
    expected = [[] for _ in range(3)]
    for g, i, r in zip(group.tolist(), init, resp, strict=True):
        if f"{i} → {r}" not in expected[g]:
            expected[g].append(f"{i} → {r}")
    assert _examples(flows, rows, group, 3) == [e[:EXAMPLES] for e in expected]
    assert max(len(e) for e in expected) > EXAMPLES  # some left out
    assert sum(len(e) for e in expected) < n  # and some pairs repeated
