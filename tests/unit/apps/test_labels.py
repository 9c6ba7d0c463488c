"""Labels of flows built packet by packet: every protocol of the test set on its
own port and on a foreign one gets its label; random bytes on SSH's port stay
unidentified, a refused connection has no payload, a tunnelled one is not read."""

from __future__ import annotations

import pytest
from scapy.layers.inet import UDP
from scapy.layers.l2 import GRE

from portmatrix.apps.labels import NO_PAYLOAD, UNIDENTIFIED, label_flows
from portmatrix.flows.from_captures import read_traffic
from portmatrix.testing.captures import ether, ip, tcp_session, write_pcap
from support import apps

CLIENT, SERVER = "10.1.0.5", "10.2.0.9"
CASES = [(c, p) for c in (*apps.CASES, apps.UNIDENTIFIED_CASE) for p in (c.port, c.foreign)]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """One capture with every case on both ports, labelled without tshark."""
    packets = []
    for k, (case, port) in enumerate(CASES):
        packets += apps.conversation(CLIENT, SERVER, 41000 + k, port, case.messages)
    path = write_pcap(tmp_path_factory.mktemp("apps") / "apps.pcap", apps.frames_of(packets))
    flows = read_traffic([str(path)]).flows
    labels = label_flows([str(path)], flows, use_tshark=False)
    by_port = dict(zip(flows["init_port"].tolist(), range(len(flows)), strict=True))
    return labels, by_port


@pytest.mark.parametrize(("case", "port"), CASES, ids=lambda v: getattr(v, "label", str(v)))
def test_label_on_its_own_port_and_a_foreign_one(labelled, case, port):
    labels, by_port = labelled
    k = list(labels.flows).index(by_port[41000 + CASES.index((case, port))])
    assert labels.labels[k] == case.label
    assert labels.by[k] == ("payload" if case.label != UNIDENTIFIED else "")


def test_tls_details_come_with_the_label(labelled):
    labels, by_port = labelled
    k = by_port[41000 + CASES.index((apps.BY_LABEL["tls"], 8443))]
    assert labels.details[k]["sni"] == "admin.example.com"


def test_no_payload_and_unread_payload(tmp_path):
    packets = tcp_session(CLIENT, SERVER, 40000, 22, data=(), close="rst")
    inner = ip("10.9.0.1", "10.9.0.2") / UDP(sport=5000, dport=5001) / b"SSH-2.0-x\r\n"
    tunnelled = ether(ip(CLIENT, SERVER) / GRE() / inner)
    path = write_pcap(tmp_path / "c.pcap", [ether(p) for p in packets] + [tunnelled])
    flows = read_traffic([str(path)]).flows
    labels = label_flows([str(path)], flows, use_tshark=False)
    got = dict(zip(flows["resp_port"].tolist(), labels.labels, strict=True))
    assert got[22] == NO_PAYLOAD
    assert got[5001] == UNIDENTIFIED  # inside a tunnel: not read, so not "no payload"


def test_only_the_chosen_flows(tmp_path):
    packets = apps.conversation(CLIENT, SERVER, 40000, 22, apps.BY_LABEL["ssh"].messages)
    packets += apps.conversation(CLIENT, SERVER, 40001, 80, apps.BY_LABEL["http"].messages)
    path = write_pcap(tmp_path / "c.pcap", apps.frames_of(packets))
    flows = read_traffic([str(path)]).flows
    second = int((flows["resp_port"] == 80).argmax())
    labels = label_flows([str(path)], flows, [second], use_tshark=False)
    assert labels.flows.tolist() == [second] and labels.labels == ["http"]
    assert labels.of(2)[0] == (["", "http"] if second == 1 else ["http", ""])
    assert labels.counts([0, 1]) == {"http": 1}


def test_without_tshark_one_notice(tmp_path, monkeypatch):
    from portmatrix.apps import tshark

    monkeypatch.setattr(tshark, "find", lambda: None)
    packets = apps.conversation(CLIENT, SERVER, 40000, 22, apps.UNIDENTIFIED_CASE.messages)
    path = write_pcap(tmp_path / "c.pcap", apps.frames_of(packets))
    flows = read_traffic([str(path)]).flows
    labels = label_flows([str(path)], flows)
    assert labels.labels == [UNIDENTIFIED]
    assert len(labels.notices) == 1 and "tshark not found" in labels.notices[0]


def test_flows_without_payload_start_no_tshark(tmp_path, monkeypatch):
    """A scan's flows carry no payload: they are no-payload without a tshark run
    (a stand-in that leaves a mark when run, and fails the test if it names any);
    one unnamed flow with payload among them gets its run."""
    from portmatrix.apps import tshark

    mark = tmp_path / "ran"
    fake = tmp_path / "tshark"
    fake.write_text(f"#!/bin/sh\ncat > /dev/null\ntouch {mark}\n")
    fake.chmod(0o755)
    monkeypatch.setattr(tshark, "find", lambda: str(fake))
    packets = []
    for port in range(20, 30):  # connections that send nothing
        packets += apps.conversation(CLIENT, SERVER, 40000 + port, port, [])
    path = write_pcap(tmp_path / "scan.pcap", apps.frames_of(packets))
    flows = read_traffic([str(path)]).flows
    labels = label_flows([str(path)], flows)
    assert labels.labels == [NO_PAYLOAD] * len(flows) and not mark.exists()
    packets += apps.conversation(CLIENT, SERVER, 40100, 99, apps.UNIDENTIFIED_CASE.messages)
    path = write_pcap(tmp_path / "scan.pcap", apps.frames_of(packets))
    flows = read_traffic([str(path)]).flows
    labels = label_flows([str(path)], flows)
    assert labels.labels.count(UNIDENTIFIED) == 1 and mark.exists()
