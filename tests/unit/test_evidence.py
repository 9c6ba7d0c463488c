"""Evidence extraction: by finding, by flow (either way round) and by verdict,
from several files in time order; bad choices are one-line errors. That the
evidence holds exactly the frames tshark's display filter selects:
tests/conformance/test_tshark_evidence.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portmatrix.errors import PortmatrixError
from portmatrix.evidence import parse_flow
from portmatrix.testing.captures import pcap_record_offsets, read_frames
from support import paths

DEMO, INV = str(paths.DEMO), str(paths.DEMO_INVENTORY)


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
    # Each packet is its source frame, byte for byte, with its time and lengths; the
    # two files are two interfaces.
    extracted, _ = read_frames(out)
    sources = {str(p): {f.frame: f for f in read_frames(p)[0]} for p in (first, second)}
    for got, where in zip(extracted, side["packets"], strict=True):
        source = sources[where["file"]][where["frame"]]
        assert (got.data, got.ts, got.wirelen, got.linktype) == (
            source.data,
            source.ts,
            source.wirelen,
            source.linktype,
        )
    assert {f.iface for f in extracted} == {0, 1}
    # Reversing the ends finds the same flow.
    reverse = f"tcp 10.20.0.13:4000 -> 10.20.0.12:{flow['initiator_port']}"
    out2 = tmp_path / "ev2.pcapng"
    assert run_cli("evidence", DEMO, "--flow", reverse, "--output", str(out2)).exit_code == 0
    frames, _ = read_frames(out2)
    assert len(frames) == len(times)


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


def test_a_scan_findings_flows_are_its_evidence(check_packets):
    """A scan is one finding: its evidence is every flow of the scan."""
    from portmatrix.evidence import flows_of_findings
    from support.packets import refused
    from support.site import N1, USER

    packets = [p for k in range(20) for p in refused(USER, N1, 40000 + k, 9000 + k)]
    result = check_packets(packets)
    (scan,) = [f for f in result.findings if f.kind == "scan"]
    chosen, docs = flows_of_findings(result, [scan.id])
    assert int(chosen.sum()) == 20 == scan.flows
    assert docs[0]["kind"] == "scan"
