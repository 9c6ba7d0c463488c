"""The JSON report's schema (portmatrix/report/schema.json, shipped in the package)
holds every report: the goldens, a check with scans and floods, a watch's final
report, and nulls (never "") for absent values."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest

from portmatrix.report.document import document
from support import golden

SCHEMA = json.loads(resources.files("portmatrix.report").joinpath("schema.json").read_text())


def test_the_schema_is_a_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("name", [c[0] for c in golden.cases()])
def test_golden_reports_hold(name):
    doc = json.loads((golden.GOLDEN / name / "report.json").read_text(encoding="utf-8"))
    doc["tool"] = {"name": "portmatrix", "version": "0"}  # goldens leave the tool out
    jsonschema.validate(doc, SCHEMA)
    for f in doc["findings"]:
        assert "" not in f.values()  # absent is null


def test_rollups_and_watch_hold(tmp_path):
    from scapy.layers.inet import TCP

    from portmatrix.decode import decode
    from portmatrix.policy.inventory import load_inventory
    from portmatrix.policy.matrix import load_matrix
    from portmatrix.testing.captures import ether, ip, raw_batch
    from portmatrix.watch.watcher import Watcher
    from support.site import N1, USER, write_site

    scan = [ip(USER, N1) / TCP(sport=40000, dport=9000 + k, flags="S") for k in range(20)]
    flood = [ip(f"192.0.2.{k}", N1) / TCP(sport=1000, dport=443, flags="S") for k in range(12)]
    packets = scan + flood
    site = write_site(tmp_path)
    matrix = load_matrix([str(site.matrix)])
    w = Watcher(matrix, load_inventory(str(site.inventory), matrix))
    w.add(*decode(raw_batch([ether(p) for p in packets])))
    result = w.finish()
    doc = json.loads(json.dumps(document(result)))
    jsonschema.validate(doc, SCHEMA)
    assert {f["kind"] for f in doc["findings"]} >= {"scan", "flood"}


def test_a_what_if_report_holds(tmp_path):
    from portmatrix.check import run_check
    from support.paths import CAPTURES

    strict = tmp_path / "strict.yaml"
    strict.write_text(
        "name: strict\nroles: {nodes: N, ipmi: I, admins: A, users: U, support: S,\n"
        "  smtp-relay: M, ldap-server: L, ntp-server: T, nfs-server: F}\nrules:\n"
        "  - {id: pg, service: P, proto: tcp, ports: 5432, from: nodes, to: nodes, "
        "required: true}\n",
        encoding="utf-8",
    )
    demo = str(CAPTURES / "thoughtspot-demo.pcap")
    inventory = str(CAPTURES / "thoughtspot-demo.inventory.yaml")
    result = run_check([demo], ["thoughtspot"], inventory, what_if=[str(strict)])
    doc = json.loads(json.dumps(document(result)))
    jsonschema.validate(doc, SCHEMA)
    changes = doc["what_if"]["changes"]
    assert {c["change"] for c in changes} == {"would-break", "would-forbid"}
    assert any(c["draft_rule"] is None for c in changes)  # absent is null
