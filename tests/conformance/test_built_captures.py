"""Captures built for every link type and encapsulation the decoder reads
(tests/encapsulated.py): the known conversations come out of each, equal to
what tshark finds in the same file, and every frame is accounted for."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from portmatrix.flows.from_captures import read_traffic
from portmatrix.report.flow_rows import flow_columns, rows
from portmatrix.testing.captures import T0, Pcapng, write_pcap
from support import encapsulated as enc
from support.tshark import diff, our_conversations, parse_conversations, tshark

CONVERSATIONS = {
    "tcp": {tuple(sorted(k)): [10] for k in enc.EXPECTED["tcp"]},
    "udp": {tuple(sorted(k)): [2] for k in enc.EXPECTED["udp"]},
}


def without_outer(tables: dict) -> dict:
    """The conversations, less a tunnel's own (between the outer addresses)."""
    outer = (enc.OUTER_A, enc.OUTER_B)
    return {
        t: {k: v for k, v in c.items() if not any(e.startswith(outer) for e in k)}
        for t, c in tables.items()
    }


def tshark_tables(path: Path, options: tuple[str, ...] = ()) -> dict:
    done = subprocess.run(
        [tshark(), "-n", "-q", "-r", str(path), *options, "-z", "conv,tcp", "-z", "conv,udp"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return parse_conversations(done.stdout)


@pytest.mark.parametrize("name", sorted(enc.WRAPS))
def test_each_encapsulation_gives_the_known_conversations_as_tshark(name, tmp_path):
    linktype, frames = enc.frames(name)
    path = write_pcap(tmp_path / f"{name}.pcap", frames, linktype=linktype)
    ours = our_conversations(path)
    assert without_outer(ours) == CONVERSATIONS
    assert diff(ours, tshark_tables(path, enc.TSHARK_OPTIONS.get(name, ()))) == {}
    traffic = read_traffic([str(path)])
    traffic.counts.check()
    assert traffic.counts.undecodable == {} and traffic.counts.unsupported == {}


def test_all_link_types_in_one_pcapng(tmp_path):
    """One interface per link type in one file: each frame goes to its own decoder."""
    capture = Pcapng()
    names = [n for n in sorted(enc.WRAPS) if n not in enc.TSHARK_OPTIONS]
    for i, name in enumerate(names):
        linktype, wrap = enc.WRAPS[name]
        iface = capture.interface(linktype, name=name)
        # Each interface carries its own TCP connection (client port 40000 + i).
        frames = [wrap(p) for p in enc.conversation(sport=40000 + i)]
        capture.packets(frames, iface=iface, start=T0 + i * 1_000_000_000)
    path = capture.write(tmp_path / "all.pcapng")
    ours = our_conversations(path)
    assert diff(ours, tshark_tables(path)) == {}
    ours = without_outer(ours)
    assert sorted(ours["tcp"].values()) == [[10]] * len(names)
    assert list(ours["udp"].values()) == [[2 * len(names)]]  # one IPv6 pair in every one


@pytest.mark.parametrize(
    ("name", "reason"),
    [("macsec", "encrypted (MACsec)"), ("wlan-protected", "encrypted (802.11 protected frame)")],
)
def test_encrypted_frames_are_counted_not_decoded(name, reason, tmp_path):
    if name == "macsec":
        frames, linktype = [enc.macsec(p) for p in enc.conversation()], 1
    else:
        frames = [bytes(enc._dot11(p, protected=True)) for p in enc.conversation()]
        linktype = 105
    path = write_pcap(tmp_path / f"{name}.pcap", frames, linktype=linktype)
    traffic = read_traffic([str(path)])
    traffic.counts.check()
    assert traffic.counts.undecodable == {reason: len(frames)}
    assert len(traffic.flows) == 0
    assert tshark_tables(path) == {"tcp": {}, "udp": {}}


def test_nflog_rule_is_the_flows_interface(tmp_path):
    """The prefix and group of the rule that logged a packet name its flow's interface."""
    packets = enc.conversation()
    frames = [enc.nflog(p, group=5, prefix=b"DROP-IN") for p in packets[:10]]
    frames += [enc.nflog(p, group=7, prefix=b"") for p in packets[10:]]
    path = write_pcap(tmp_path / "nflog.pcap", frames, linktype=239)
    traffic = read_traffic([str(path)])
    by_proto = {
        f["proto"]: f["interface"]
        for f in rows(flow_columns(traffic.flows, captures=traffic.captures))
    }
    assert by_proto == {"tcp": "nflog:5 DROP-IN", "udp": "nflog:7"}
    names = [i.name for i in traffic.captures[0].interfaces]
    assert names == ["", "nflog:5 DROP-IN", "nflog:7"]
