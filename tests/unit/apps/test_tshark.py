"""tshark's protocol stacks as labels, and one run of it over the first packets
of several flows (here a stand-in program printing what tshark would; the real
one is driven in tests/conformance/test_tshark_apps.py)."""

from __future__ import annotations

import os
import sys

import pytest

from portmatrix.apps import tshark
from portmatrix.apps.samples import read_samples
from portmatrix.flows.from_captures import read_traffic
from portmatrix.testing.captures import write_pcap
from support import apps


@pytest.mark.parametrize(
    ("stack", "label"),
    [
        ("eth:ethertype:ip:tcp", None),
        ("eth:ethertype:ip:tcp:data", None),
        ("eth:ethertype:vlan:ethertype:ip:tcp:f5ethtrailer", None),
        ("eth:ethertype:ipv6:ipv6.hopopts:udp:data", None),
        ("eth:ethertype:ip:tcp:tls", "tls"),
        ("eth:ethertype:ip:tcp:http:data-text-lines", "data-text-lines"),
        ("eth:ethertype:ip:udp:quic:tls", "quic"),
        ("eth:ethertype:ip:tcp:pgsql", "postgresql"),
        ("eth:ethertype:ip:tcp:resp", "redis"),
        ("eth:ethertype:ip:udp:sip", "sip"),
        ("sll:ethertype:ip:tcp:nbss:smb2", "smb"),
    ],
)
def test_deepest_application_layer(stack, label):
    assert tshark.deepest(stack) == label


def fake_tshark(tmp_path, lines: str):
    """A stand-in for tshark: it reads a pcapng from its standard input (it fails
    on anything else) and prints `lines`; it leaves what it read in `read.pcapng`."""
    fake = tmp_path / "tshark"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "data = sys.stdin.buffer.read()\n"
        f"open({str(tmp_path / 'read.pcapng')!r}, 'wb').write(data)\n"
        "sys.exit(1) if data[:4] != bytes.fromhex('0a0d0d0a') else None\n"
        f"sys.stdout.write({lines!r})\n"
    )
    os.chmod(fake, 0o755)
    return fake


def flows_of_two_conversations(tmp_path):
    packets = apps.conversation("10.1.0.5", "10.2.0.9", 40000, 5060, [("c", b"x")])
    packets += apps.conversation("10.1.0.5", "10.2.0.9", 40001, 5060, [("c", b"y")])
    path = write_pcap(tmp_path / "c.pcap", apps.frames_of(packets))
    return read_samples([str(path)], read_traffic([str(path)]).flows)


@pytest.mark.parametrize("early", [True, False], ids=["started-early", "started-late"])
def test_one_run_labels_each_flow_by_its_first_named_frame(tmp_path, early):
    found = flows_of_two_conversations(tmp_path)
    # Frame 4 (the first flow's data) is SIP, the rest plain TCP.
    lines = (
        "1\teth:ethertype:ip:tcp\n4\teth:ethertype:ip:tcp:sip\n"
        "5\teth:ethertype:ip:tcp:data\n99\teth:ethertype:ip:tcp:bogus\n"
    )
    with tshark.Dissector(str(fake_tshark(tmp_path, lines)), early) as dissector:
        assert dissector.labels(found) == {0: "sip"}
    assert dissector.process.returncode == 0
    assert (tmp_path / "read.pcapng").stat().st_size > 100  # it was given the packets


def test_a_run_never_given_packets_is_killed(tmp_path):
    with tshark.Dissector(str(fake_tshark(tmp_path, "")), early=True) as dissector:
        process = dissector.process
        assert process.poll() is None  # waiting for its input
    assert process.returncode is not None  # gone when the `with` is left


def test_a_run_that_fails_names_nothing(tmp_path):
    found = flows_of_two_conversations(tmp_path)
    broken = tmp_path / "broken"
    broken.write_text("#!/bin/sh\nexit 3\n")
    os.chmod(broken, 0o755)
    with tshark.Dissector(str(broken), early=False) as dissector:
        assert dissector.labels(found) == {}
