"""`check` on every sample capture, in every format, against reviewed golden files.

Regenerate with `scripts/update-golden` and
review the diff.
"""

from __future__ import annotations

import os
import re

import pytest

from portmatrix import __version__
from support import golden

CASES = golden.cases()


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(golden.ROOT)


def test_every_sample_capture_has_a_case():
    names = {name for name, _, _ in CASES}
    assert {
        "thoughtspot-demo",
        "violations-small",
        "midstream",
        "one-way-span",
        "multi-link",
    } <= names


@pytest.mark.parametrize(("name", "capture", "inventory"), CASES, ids=[c[0] for c in CASES])
def test_outputs_match_golden(name, capture, inventory):
    outputs = golden.render(capture, inventory)
    assert set(outputs) == set(golden.OUTPUTS)
    for file, text in outputs.items():
        path = golden.GOLDEN / name / file
        assert path.exists(), f"missing {path}: run scripts/update-golden"
        assert text == path.read_text(encoding="utf-8"), f"{name}/{file} differs from golden"


def test_demo_verdicts_and_findings():
    """The demo's expected results, stated independently of the golden files
    (captures/README.md)."""
    import json

    doc = json.loads((golden.GOLDEN / "thoughtspot-demo" / "report.json").read_text())
    assert doc["summary"]["verdicts"] == {
        "allowed": 33,
        "wrong-direction": 1,
        "unexpected-source": 2,
        "unexpected-port": 3,
        "out-of-scope": 1,
    }
    # Each problem once: the refused postgres and unanswered falcon-rpc attempts are
    # part of the required-unreachable findings that rest on them.
    assert doc["summary"]["findings"] == {"error": 7, "warning": 1, "info": 2}
    coverage = {c["rule"]: c["status"] for c in doc["coverage"] if c["required"]}
    assert coverage.pop("hdfs-namenode-rpc") == "missing-required"
    assert coverage.pop("postgres") == "required-unreachable"
    assert coverage.pop("falcon-rpc") == "required-unreachable"
    assert set(coverage.values()) == {"ok"}
    by_id = {f["id"]: f for f in doc["findings"]}
    flows = {
        (
            f["verdict"],
            f["initiator"],
            ",".join(f["initiator_roles"]),
            f["responder"],
            ",".join(f["responder_roles"]),
            f["port"],
            f["severity"],
            by_id[f["part_of"]]["rule"] if f["part_of"] else None,
        )
        for f in doc["findings"]
        if f["kind"] == "flow"
    }
    assert flows == {
        ("wrong-direction", "10.20.0.11", "nodes", "10.30.0.5", "admins", 22, "error", None),
        ("unexpected-source", "10.40.1.7", "users", "10.20.0.12", "nodes", 5432, "error", None),
        ("unexpected-port", "10.40.3.9", "users", "10.20.0.13", "nodes", 8443, "error", None),
        ("unexpected-port", "10.20.0.12", "nodes", "198.51.100.77", "", 6667, "error", None),
        ("allowed", "10.20.0.11", "nodes", "10.20.0.13", "nodes", 5432, "error", "postgres"),
        ("allowed", "10.20.0.12", "nodes", "10.20.0.13", "nodes", 4000, "error", "falcon-rpc"),
        ("allowed", "10.30.0.5", "admins", "10.20.0.13", "nodes", 4001, "warning", None),
        ("unexpected-source", "10.40.5.5", "users", "10.20.0.11", "nodes", 22, "info", None),
        ("unexpected-port", "10.40.6.6", "users", "10.20.0.12", "nodes", 161, "info", None),
    }
    # Ids at the level of the problem (verdict, roles, service), not of the hosts.
    from portmatrix.findings.model import stable_id

    assert stable_id("unexpected-port", "users", "nodes", "tcp", 8443) in by_id
    assert stable_id("wrong-direction", "nodes", "admins", "tcp", "ssh-from-admins") in by_id


def test_readme_shows_the_real_demo_output():
    readme = (golden.ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"The first command prints.*?\n```\n(.*?)```", readme, re.S)
    assert block, "README lost the demo output block"
    shown = block.group(1)
    actual = (golden.GOLDEN / "thoughtspot-demo" / "report.txt").read_text(encoding="utf-8")
    actual = actual.replace("portmatrix VERSION", f"portmatrix {__version__}")
    assert shown.strip() == actual.strip(), "update the README's demo output"


def test_golden_files_have_no_wall_clock_or_version():
    from portmatrix import __version__

    for name, _, _ in CASES:
        for file in golden.OUTPUTS:
            text = (golden.GOLDEN / name / file).read_text(encoding="utf-8")
            assert f'"version": "{__version__}"' not in text
            assert os.getcwd() not in text
