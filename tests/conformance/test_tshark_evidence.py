"""Evidence files checked with tshark: the packets `evidence` cuts out are exactly
the frames tshark's display filter (the finding's) selects in the input, with
their original times, and tshark reads the file written."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from portmatrix.check import run_check
from support import paths
from support.tshark import tshark as tshark_path

DEMO, INV = str(paths.DEMO), str(paths.DEMO_INVENTORY)


def tshark(path: str, *args: str) -> list[str]:
    out = subprocess.run(
        [tshark_path(), "-r", path, *args], capture_output=True, text=True, check=True
    )
    return out.stdout.split()


@pytest.fixture(scope="module")
def demo_findings():
    return {
        (f.verdict, f.initiator, f.responder, f.port): f
        for f in run_check([DEMO], ["thoughtspot"], INV).findings
        if f.kind == "flow"
    }


@pytest.mark.parametrize(
    "key",
    [
        ("wrong-direction", "10.20.0.11", "10.30.0.5", 22),
        ("unexpected-port", "10.40.6.6", "10.20.0.12", 161),  # with the ICMP error about it
        ("allowed", "10.20.0.12", "10.20.0.13", 4000),  # SYN retransmissions, unanswered
    ],
)
def test_evidence_holds_exactly_the_frames_tshark_selects(run_cli, tmp_path, demo_findings, key):
    finding = demo_findings[key]
    out = tmp_path / "ev.pcapng"
    result = run_cli(
        "evidence",
        DEMO,
        "--rules",
        "thoughtspot",
        "--inventory",
        INV,
        "--finding",
        finding.id,
        "--output",
        str(out),
    )
    assert result.exit_code == 0, result.stderr
    expected = tshark(DEMO, "-Y", finding.filter, "-T", "fields", "-e", "frame.number")
    side = json.loads(Path(str(out) + ".json").read_text())
    assert [str(p["frame"]) for p in side["packets"]] == expected
    # The evidence file holds those packets, with their original times.
    times = tshark(DEMO, "-Y", finding.filter, "-T", "fields", "-e", "frame.time_epoch")
    assert tshark(str(out), "-T", "fields", "-e", "frame.time_epoch") == times
    assert side["findings"][0]["id"] == finding.id
    (source,) = side["sources"]
    assert source["sha256"] == hashlib.sha256(Path(DEMO).read_bytes()).hexdigest()


def test_evidence_of_a_flow_given_the_other_way_round_reads_in_tshark(run_cli, tmp_path):
    flows = json.loads(run_cli("flows", DEMO, "--port", "4000", "--format", "json").stdout)
    (flow,) = [f for f in flows["flows"] if f["initiator"] == "10.20.0.12"]
    reverse = f"tcp 10.20.0.13:4000 -> 10.20.0.12:{flow['initiator_port']}"
    out = tmp_path / "ev.pcapng"
    assert run_cli("evidence", DEMO, "--flow", reverse, "--output", str(out)).exit_code == 0
    side = json.loads(Path(str(out) + ".json").read_text())
    assert len(side["packets"]) == flow["packets_fwd"] + flow["packets_rev"]
    assert len(tshark(str(out), "-T", "fields", "-e", "frame.number")) == len(side["packets"])
