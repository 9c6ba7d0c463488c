"""`portmatrix flows` as a command: narrowed flows of one or several inputs (a
folder's non-captures named), a word when a filter or a window selects nothing,
outputs checked before reading. (Through the CLI: test_cli_flows.py.)"""

from __future__ import annotations

import json

import pytest

from portmatrix.errors import PortmatrixError
from portmatrix.listing import FlowsOptions, run_command
from portmatrix.testing.captures import ether, tcp_session, write_pcap
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
    assert run_command(FlowsOptions((DEMO,), fmt="csv", outputs=(str(out),))) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"portmatrix: wrote {out} (csv): 40 flows\n"
    assert out.read_text().count("\n") == 41


@pytest.fixture
def folder(tmp_path):
    """Two captures: ssh and https from 10.0.0.1 to 10.0.0.2, then dns to 10.0.0.3;
    and notes beside them."""
    folder = tmp_path / "in"
    folder.mkdir()
    first = tcp_session("10.0.0.1", "10.0.0.2", 40000, 22) + tcp_session(
        "10.0.0.1", "10.0.0.2", 40001, 443
    )
    write_pcap(folder / "a.pcap", [ether(p) for p in first])
    write_pcap(folder / "b.pcap", [ether(p) for p in tcp_session("10.0.0.1", "10.0.0.3", 1, 53)])
    (folder / "notes.txt").write_text("not a capture")
    return folder


def from_folder(capsys, folder, **options) -> dict:
    assert run_command(FlowsOptions((str(folder),), fmt="json", quiet=True, **options)) == 0
    return json.loads(capsys.readouterr().out)


def test_every_flow_of_a_folder_and_the_files_it_skipped(folder, capsys):
    doc = from_folder(capsys, folder)
    assert sorted(f["responder_port"] for f in doc["flows"]) == [22, 53, 443]
    skipped = "skipped in the folders given: 1 file(s) are not captures: "
    assert doc["notices"] == [skipped + str(folder / "notes.txt")]


def test_filters_narrow_the_listing(folder, capsys):
    doc = from_folder(capsys, folder, filters={"ports": (443, 53)})
    assert sorted(f["responder_port"] for f in doc["flows"]) == [53, 443]
    doc = from_folder(capsys, folder, filters={"hosts": ("10.0.0.3",)})
    assert [f["responder"] for f in doc["flows"]] == ["10.0.0.3"]


def test_an_output_that_is_an_input_is_refused_before_reading(folder):
    target = str(folder / "a.pcap")
    with pytest.raises(PortmatrixError, match="is one of the inputs"):
        run_command(FlowsOptions(inputs=(target,), fmt="csv", outputs=(target,)))
