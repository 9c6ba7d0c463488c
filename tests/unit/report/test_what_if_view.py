"""The what-if section in every report that carries it, and nowhere without
--what-if."""

from __future__ import annotations

import json

import pytest

from portmatrix.check import run_check
from portmatrix.report import CHECK_FORMATS
from portmatrix.report.document import document
from support.paths import CAPTURES

DEMO = str(CAPTURES / "thoughtspot-demo.pcap")
INVENTORY = str(CAPTURES / "thoughtspot-demo.inventory.yaml")
STRICT = """
name: strict
roles: {nodes: N, ipmi: I, admins: A, users: U, support: S, smtp-relay: M, ldap-server: L,
        ntp-server: T, nfs-server: F}
rules:
  - {id: ssh-from-admins, service: SSH, proto: tcp, ports: 22, from: admins, to: nodes}
  - {id: pg, service: Postgres, proto: tcp, ports: 5432, from: nodes, to: nodes, required: true}
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    path = tmp_path_factory.mktemp("whatif") / "<b>strict.yaml"
    path.write_text(STRICT, encoding="utf-8")
    return run_check([DEMO], ["thoughtspot"], INVENTORY, what_if=[str(path)])


def test_the_json_document_carries_the_changes(result):
    part = json.loads(CHECK_FORMATS["json"](result))["what_if"]
    assert part["matrix"] == "strict" and part["rules"][0].endswith("<b>strict.yaml")
    kinds = {c["change"] for c in part["changes"]}
    assert kinds == {"would-break", "would-forbid"}
    assert part["summary"]["changes"] == result.what_if.severity_counts()
    breaks = [c for c in part["changes"] if c["change"] == "would-break"]
    assert sum(c["flows"] for c in breaks) == sum(
        c.flows for c in result.what_if.changes if c.change == "would-break"
    )
    coverage = [(c["rule"], c["now"], c["draft"], c["severity"]) for c in part["coverage"]]
    # The strict draft keeps two rules: every required rule of today's matrix is
    # gone from it, the ones ok today too (they would no longer be checked).
    ok_today = ["callosum-metadata", "icmp-health", "oreo-rpc", "orion-rpc", "sage-rpc"]
    ok_today += ["zookeeper-client", "zookeeper-peer"]
    assert sorted(coverage) == sorted(
        [
            ("falcon-rpc", "required-unreachable", "absent", "info"),
            ("hdfs-namenode-rpc", "missing-required", "absent", "info"),
            ("pg", "absent", "required-unreachable", "warning"),
            ("postgres", "required-unreachable", "absent", "info"),
            *((rule, "ok", "absent", "info") for rule in ok_today),
        ]
    )
    pg = next(c for c in part["coverage"] if c["rule"] == "pg")
    assert pg["what"] == "nodes → nodes tcp/5432"


def test_text_markdown_and_html_show_the_section(result):
    text = CHECK_FORMATS["text"](result)
    assert "WHAT IF " in text and "would break: users → nodes tcp/443" in text.replace("\n ", " ")
    markdown = CHECK_FORMATS["markdown"](result)
    assert (
        "### What if:" in markdown
        and "| error | would-break | users | nodes | tcp/443 |" in markdown
    )
    html = CHECK_FORMATS["html"](result)
    assert "<table id='what-if'>" in html and "&lt;b&gt;strict.yaml" in html
    assert "<b>strict" not in html


def test_without_what_if_no_report_has_the_section():
    plain = run_check([DEMO], ["thoughtspot"], INVENTORY)
    assert "what_if" not in document(plain)
    assert "WHAT IF" not in CHECK_FORMATS["text"](plain)
    assert "What if" not in CHECK_FORMATS["markdown"](plain)
    assert "what-if" not in CHECK_FORMATS["html"](plain)
