"""`portmatrix flows` as a command: narrowed flows, and a word when a filter or
a window selects nothing."""

from __future__ import annotations

import json

from portmatrix.listing import FlowsOptions, run_command
from support.paths import CAPTURES

DEMO = str(CAPTURES / "thoughtspot-demo.pcap")


def listed(capsys, **options) -> dict:
    assert run_command(FlowsOptions((DEMO,), fmt="json", quiet=True, **options)) == 0
    return json.loads(capsys.readouterr().out)


def test_all_flows(capsys):
    doc = listed(capsys)
    assert len(doc["flows"]) == 40 and doc["notices"] == []


def test_a_window_outside_the_capture_says_so(capsys):
    doc = listed(capsys, filters={"since": "2031-01-01"})
    assert doc["flows"] == []
    assert any("holds none of the traffic" in n for n in doc["notices"])


def test_a_host_that_matches_nothing_says_so(capsys):
    doc = listed(capsys, filters={"hosts": ("192.0.2.99",)})
    assert doc["flows"] == []
    assert any(n.startswith("no flow matches the filters") for n in doc["notices"])


def test_to_a_file_says_what_it_wrote(tmp_path, capsys):
    out = tmp_path / "flows.csv"
    assert run_command(FlowsOptions((DEMO,), fmt="csv", output=str(out))) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"portmatrix: wrote {out} (csv): 40 flows\n"
    assert out.read_text().count("\n") == 41
