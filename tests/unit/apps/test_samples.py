"""Samples: the first packets of chosen flows, their payload joined per side,
the ports of the packets kept for tshark hidden, reading stopped early."""

from __future__ import annotations

import struct

import numpy as np

from portmatrix.apps import samples
from portmatrix.flows.from_captures import read_traffic
from portmatrix.testing.captures import write_pcap
from support import apps

CLIENT, SERVER = "10.1.0.5", "10.2.0.9"


def test_payload_per_side_and_hidden_ports(tmp_path):
    messages = [("s", b"banner\r\n"), ("c", b"hello "), ("c", b"again"), ("s", b"reply")]
    packets = apps.conversation(CLIENT, SERVER, 40000, 2222, messages)
    path = write_pcap(tmp_path / "c.pcap", apps.frames_of(packets))
    flows = read_traffic([str(path)]).flows
    found = samples.read_samples([str(path)], flows)
    assert (found.samples[0].client, found.samples[0].server) == (
        b"hello again",
        b"banner\r\nreply",
    )
    assert len(found.packets) == samples.FIRST_PACKETS == len(found.flow_of_packet)
    for p in found.packets:  # Ethernet, IPv4 without options: TCP ports at 34
        ports = struct.unpack(">HH", p.data[34:38])
        assert ports in (samples.NEUTRAL_PORTS, samples.NEUTRAL_PORTS[::-1])
        assert 2222 not in ports and 40000 not in ports


def test_reading_stops_once_every_flow_has_its_first_packets(tmp_path, monkeypatch):
    first = apps.conversation(CLIENT, SERVER, 40000, 80, apps.BY_LABEL["http"].messages)
    later = apps.conversation(CLIENT, SERVER, 40001, 80, apps.BY_LABEL["http"].messages)
    path = write_pcap(tmp_path / "c.pcap", apps.frames_of(first + later))
    flows = read_traffic([str(path)]).flows
    one = flows.take(np.flatnonzero(flows["init_port"] == 40000))
    monkeypatch.setattr(samples, "FIRST_PACKETS", 3)
    found = samples.read_samples([str(path)], one)
    assert [p.frame for p in found.packets] == [1, 2, 3]
    assert found.samples[0].client == b""  # the handshake only
