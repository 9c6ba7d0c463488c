"""Evidence extraction, checked against tshark's display filter on the same input."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from portmatrix.check import run_check
from portmatrix.errors import PortmatrixError
from portmatrix.evidence import parse_flow
from portmatrix.testing.captures import pcap_record_offsets
from support.paths import REPO as ROOT

DEMO = str(ROOT / "captures" / "thoughtspot-demo.pcap")
INV = str(ROOT / "captures" / "thoughtspot-demo.inventory.yaml")
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="needs tshark")


def tshark(path: str, *args: str) -> list[str]:
    out = subprocess.run(["tshark", "-r", path, *args], capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.fixture(scope="module")
def demo_findings():
    return {
        (f.verdict, f.initiator, f.responder, f.port): f
        for f in run_check([DEMO], ["thoughtspot"], INV).findings
        if f.kind == "flow"
    }


@needs_tshark
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


@needs_tshark
def test_by_flow_and_from_several_files_in_time_order(run_cli, tmp_path):
    # Split the demo in two files at record 150; give them in reverse order.
    data = Path(DEMO).read_bytes()
    cut = pcap_record_offsets(data)[149]
    first, second = tmp_path / "a.pcap", tmp_path / "b.pcap"
    first.write_bytes(data[:cut])
    second.write_bytes(data[:24] + data[cut:])
    out = tmp_path / "ev.pcapng"
    flows = json.loads(run_cli("flows", DEMO, "--port", "4000", "--format", "json").stdout)
    (flow,) = [f for f in flows["flows"] if f["initiator"] == "10.20.0.12"]
    spec = f"tcp 10.20.0.12:{flow['initiator_port']} -> 10.20.0.13:4000"
    result = run_cli("evidence", str(second), str(first), "--flow", spec, "--output", str(out))
    assert result.exit_code == 0, result.stderr
    side = json.loads(Path(str(out) + ".json").read_text())
    assert len(side["packets"]) == flow["packets_fwd"] + flow["packets_rev"]
    times = [p["time"] for p in side["packets"]]
    assert times == sorted(times)
    # Reversing the ends finds the same flow.
    reverse = f"tcp 10.20.0.13:4000 -> 10.20.0.12:{flow['initiator_port']}"
    out2 = tmp_path / "ev2.pcapng"
    assert run_cli("evidence", DEMO, "--flow", reverse, "--output", str(out2)).exit_code == 0
    assert out2.read_bytes() and len(
        tshark(str(out2), "-T", "fields", "-e", "frame.number")
    ) == len(times)


@needs_tshark
def test_by_verdict(run_cli, tmp_path):
    out = tmp_path / "ev.pcapng"
    result = run_cli(
        "evidence",
        DEMO,
        "--rules",
        "thoughtspot",
        "--inventory",
        INV,
        "--verdict",
        "unexpected-port",
        "--output",
        str(out),
    )
    assert result.exit_code == 0, result.stderr
    side = json.loads(Path(str(out) + ".json").read_text())
    ports = {f["responder_port"] for f in side["flows"]}
    assert ports == {8443, 6667, 161}


def test_unknown_finding_is_exit_2(run_cli, tmp_path):
    result = run_cli(
        "evidence",
        DEMO,
        "--rules",
        "thoughtspot",
        "--inventory",
        INV,
        "--finding",
        "PM-0000000000",
        "--output",
        str(tmp_path / "e.pcapng"),
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("portmatrix: error: --finding: no finding PM-0000000000")


def test_choose_something(run_cli, tmp_path):
    result = run_cli("evidence", DEMO, "--output", str(tmp_path / "e.pcapng"))
    assert result.exit_code == 2 and "choose flows" in result.stderr
    result = run_cli(
        "evidence", DEMO, "--verdict", "allowed", "--output", str(tmp_path / "e.pcapng")
    )
    assert result.exit_code == 2 and "need --rules" in result.stderr


@pytest.mark.parametrize("spec", ["tcp 10.0.0.1 -> 10.0.0.2:22", "gopher a:1 -> b:2", ""])
def test_bad_flow_spec(spec):
    with pytest.raises(PortmatrixError, match="is not a flow"):
        parse_flow(spec)


def test_ipv6_flow_spec():
    assert parse_flow("udp [fd00::1]:53 -> [fd00::2]:5353") == (17, "fd00::1", 53, "fd00::2", 5353)


def test_a_fragmented_flow_brings_every_fragment(run_cli, tmp_path):
    """A datagram counts once in its flow, but its evidence is every fragment, the
    later ones (here sent first, as Linux does) included."""
    from scapy.layers.inet import IP, UDP, fragment

    from portmatrix.testing.captures import ether, write_pcap

    big = IP(src="10.0.0.1", dst="10.0.0.2", id=7) / UDP(sport=2049, dport=789) / (b"n" * 3000)
    reply = IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=789, dport=2049) / b"ok"
    frames = [ether(f) for f in fragment(big, fragsize=1000)[::-1]] + [ether(reply)]
    path = write_pcap(tmp_path / "frag.pcap", frames)
    out = tmp_path / "ev.pcapng"
    spec = "udp 10.0.0.1:2049 -> 10.0.0.2:789"
    result = run_cli("evidence", str(path), "--flow", spec, "--output", str(out))
    assert result.exit_code == 0, result.stderr
    side = json.loads(Path(str(out) + ".json").read_text())
    assert len(side["packets"]) == 5
    (flow,) = json.loads(run_cli("flows", str(path), "--format", "json").stdout)["flows"]
    assert (flow["packets_fwd"], flow["packets_rev"]) == (1, 1)


@pytest.mark.parametrize(
    "interface",
    [{"tsoffset": -(1 << 62)}, {"tsoffset": (1 << 63) - 1}, {}],
    ids=["negative", "overflowing-offset", "ns-ticks-on-a-us-interface"],
)
def test_times_out_of_range_never_reach_the_evidence_file(run_cli, tmp_path, interface):
    from portmatrix.sources.capture import Capture
    from portmatrix.testing.captures import T0, Pcapng, ether, tcp_session

    w = Pcapng()
    good = w.interface(1, tsresol=9)
    bad = w.interface(1, **interface)
    packets = [ether(p) for p in tcp_session("10.0.2.7", "10.0.0.1", 40000, 22)]
    for k, pkt in enumerate(packets):  # every other packet on the interface whose clock lies
        if k % 2:
            w.packet(pkt, iface=bad, raw_ticks=T0 if not interface else T0 // 1000 + k)
        else:
            w.packet(pkt, iface=good, ts=T0 + k * 1000)
    path = w.write(tmp_path / "clock.pcapng")
    out = tmp_path / "ev.pcapng"
    result = run_cli("evidence", path, "--flow", "tcp 10.0.2.7:40000 -> 10.0.0.1:22", "-o", out)
    assert result.exit_code == 0, result.stderr
    evidence = Capture(str(out))
    times = [t for batch in evidence.batches() for t in batch.ts.tolist()]
    assert len(times) == len(packets) and not evidence.info.truncated
    assert min(times) >= T0 and max(times) < T0 + 10**9  # the times of the packets before
