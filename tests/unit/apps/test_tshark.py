"""tshark's protocol stacks as labels, and one run of it over the first packets
of several flows (here a stand-in program printing what tshark would; the real
one is driven in tests/conformance/test_tshark_apps.py)."""

from __future__ import annotations

import os

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


def test_one_run_labels_each_flow_by_its_first_named_frame(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    packets = apps.conversation("10.1.0.5", "10.2.0.9", 40000, 5060, [("c", b"x")])
    packets += apps.conversation("10.1.0.5", "10.2.0.9", 40001, 5060, [("c", b"y")])
    path = write_pcap(tmp_path / "c.pcap", apps.frames_of(packets))
    found = read_samples([str(path)], read_traffic([str(path)]).flows)
    # A stand-in: frame 4 (the first flow's data) is SIP, the rest plain TCP.
    fake = tmp_path / "tshark"
    fake.write_text(
        "#!/bin/sh\n"
        'test -s "$3" || exit 1\n'  # -n -r FILE: the file exists and holds packets
        "printf '1\\teth:ethertype:ip:tcp\\n4\\teth:ethertype:ip:tcp:sip\\n"
        "5\\teth:ethertype:ip:tcp:data\\n99\\teth:ethertype:ip:tcp:bogus\\n'\n"
    )
    os.chmod(fake, 0o755)
    assert tshark.labels(str(fake), found) == {0: "sip"}
    assert not list(tmp_path.glob("portmatrix-*"))  # the temporary file is gone
