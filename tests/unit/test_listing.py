"""`portmatrix flows` as a module call: flows of several inputs narrowed by the
filters, to standard output or a file, and the remarks that say why a listing
is empty. (The same command through the CLI: test_cli_flows.py.)"""

from __future__ import annotations

import csv
import io
import json

import pytest

from portmatrix.errors import PortmatrixError
from portmatrix.listing import FlowsOptions, run_command
from portmatrix.testing.captures import ether, tcp_session, write_pcap


@pytest.fixture
def captures(tmp_path):
    """Two captures: ssh and https from 10.0.0.1 to 10.0.0.2, then dns to 10.0.0.3."""
    folder = tmp_path / "in"
    folder.mkdir()
    first = tcp_session("10.0.0.1", "10.0.0.2", 40000, 22) + tcp_session(
        "10.0.0.1", "10.0.0.2", 40001, 443
    )
    write_pcap(folder / "a.pcap", [ether(p) for p in first])
    write_pcap(folder / "b.pcap", [ether(p) for p in tcp_session("10.0.0.1", "10.0.0.3", 1, 53)])
    (folder / "notes.txt").write_text("not a capture")
    return folder


def listed(capsys, **options) -> tuple[int, dict, str]:
    code = run_command(FlowsOptions(quiet=True, fmt="json", **options))
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_every_flow_of_every_input(captures, capsys):
    code, doc, err = listed(capsys, inputs=(str(captures),))
    assert code == 0 and err == ""
    assert sorted(f["responder_port"] for f in doc["flows"]) == [22, 53, 443]


def test_filters_narrow_the_listing(captures, capsys):
    _, doc, _ = listed(capsys, inputs=(str(captures),), filters={"ports": (443, 53)})
    assert sorted(f["responder_port"] for f in doc["flows"]) == [53, 443]
    _, doc, _ = listed(capsys, inputs=(str(captures),), filters={"hosts": ("10.0.0.3",)})
    assert [f["responder"] for f in doc["flows"]] == ["10.0.0.3"]


def test_to_a_file_with_one_line_saying_so(captures, tmp_path, capsys):
    out = tmp_path / "flows.csv"
    code = run_command(FlowsOptions(inputs=(str(captures),), fmt="csv", output=str(out)))
    assert code == 0
    assert len(list(csv.DictReader(io.StringIO(out.read_text())))) == 3
    stdout, stderr = capsys.readouterr()
    assert stdout == ""
    assert stderr.splitlines()[-1] == f"portmatrix: wrote {out} (csv): 3 flows"


def test_an_output_that_is_an_input_is_refused_before_reading(captures):
    target = str(captures / "a.pcap")
    with pytest.raises(PortmatrixError, match="is one of the inputs"):
        run_command(FlowsOptions(inputs=(target,), output=target))


def test_empty_listings_say_why(captures, capsys):
    run_command(
        FlowsOptions(inputs=(str(captures),), quiet=True, filters={"ports": (8080,)}),
    )
    text = capsys.readouterr().out
    assert "no flow matches the filters ({'ports': [8080]})" in text
    skipped = "1 file(s) in the folders given are not captures and were skipped: "
    assert skipped + str(captures / "notes.txt") in text
    run_command(FlowsOptions(inputs=(str(captures),), quiet=True, filters={"since": "+1h"}))
    text = capsys.readouterr().out
    assert "the time window (--since +1h) holds none of the traffic" in text
    assert "no flow matches the filters" not in text  # the window said it already
