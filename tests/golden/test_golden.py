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
    assert doc["summary"]["findings"] == {"error": 9, "warning": 1, "info": 2}
    coverage = {c["rule"]: c["status"] for c in doc["coverage"] if c["required"]}
    assert coverage.pop("hdfs-namenode-rpc") == "missing-required"
    assert coverage.pop("postgres") == "required-unreachable"
    assert coverage.pop("falcon-rpc") == "required-unreachable"
    assert set(coverage.values()) == {"ok"}
    flows = {
        (f["verdict"], f["initiator"], f["responder"], f["port"], f["severity"])
        for f in doc["findings"]
        if f["kind"] == "flow"
    }
    assert flows == {
        ("wrong-direction", "10.20.0.11", "10.30.0.5", 22, "error"),
        ("unexpected-source", "10.40.1.7", "10.20.0.12", 5432, "error"),
        ("unexpected-port", "10.40.3.9", "10.20.0.13", 8443, "error"),
        ("unexpected-port", "10.20.0.12", "198.51.100.77", 6667, "error"),
        ("allowed", "10.20.0.11", "10.20.0.13", 5432, "error"),
        ("allowed", "10.20.0.12", "10.20.0.13", 4000, "error"),
        ("allowed", "10.30.0.5", "10.20.0.13", 4001, "warning"),
        ("unexpected-source", "10.40.5.5", "10.20.0.11", 22, "info"),
        ("unexpected-port", "10.40.6.6", "10.20.0.12", 161, "info"),
    }


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
