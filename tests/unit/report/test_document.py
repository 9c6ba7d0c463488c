"""The check result as one document (the JSON report): inputs with their hashes,
verdict counts, findings, coverage, decode buckets that account for every frame."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether

from portmatrix.check import run_check
from portmatrix.report import document as document_module
from portmatrix.report.document import SCHEMA_VERSION, document
from portmatrix.testing.captures import MAC_A, MAC_B, Pcapng, ether, tcp_session, write_pcap
from support.site import N1, OUT1, OUT2, USER

TODAY = dt.date(2025, 1, 1)


@pytest.fixture
def check(site):
    """`check(paths)`: the check result of these captures against the small site."""
    small = site()
    return lambda paths: run_check(
        [str(p) for p in paths], [str(small.matrix)], str(small.inventory), today=TODAY
    )


def test_inputs_summary_and_findings(check, tmp_path):
    packets = tcp_session(USER, N1, 40000, 443) + tcp_session(USER, N1, 40001, 8443)
    packets += tcp_session(OUT1, OUT2, 40002, 80)
    path = write_pcap(tmp_path / "c.pcap", [ether(p) for p in packets])
    result = check([path])
    doc = document(result)

    assert doc["schema_version"] == SCHEMA_VERSION == 2
    assert doc["tool"]["name"] == "portmatrix"
    (cap,) = doc["inputs"]["captures"]
    data = path.read_bytes()
    assert cap["sha256"] == hashlib.sha256(data).hexdigest()
    assert (cap["path"], cap["format"], cap["size"], cap["frames"]) == (
        str(path),
        "pcap",
        len(data),
        24,
    )
    assert cap["truncated"] is None and cap["drops"] == 0
    assert cap["interfaces"] == [{"name": "", "link_type": 1}]
    assert doc["inputs"]["rules"] == [str(tmp_path / "small" / "matrix.yaml")]
    assert doc["inputs"]["matrix"] == "small"
    assert doc["inputs"]["inventory"] == str(tmp_path / "small" / "inventory.yaml")

    s = doc["summary"]
    assert (s["packets"], s["flows"]) == (24, 3)
    assert s["verdicts"] == {
        "allowed": 1,
        "wrong-direction": 0,
        "unexpected-source": 0,
        "unexpected-port": 1,
        "out-of-scope": 1,
    }
    assert s["findings"] == {"error": 3, "warning": 0, "info": 0}  # 8443 + 2 missing-required
    assert s["known_findings"] == 0
    assert s["time_window"] == {
        "first": "2023-11-14T22:13:20.000000Z",
        "last": "2023-11-14T22:13:20.023000Z",
    }
    assert [f["id"] for f in doc["findings"]] == [f.id for f in result.findings]
    assert [c["rule"] for c in doc["coverage"]] == [r.id for r in result.matrix.rules]
    assert doc["capture_health"] == {
        "tcp_flows": 3,
        "tcp_one_way": 0,
        "drops": 0,
        "weakened": False,
    }
    json.dumps(doc)  # plain data only


def test_decode_buckets_add_up_to_frames(check, tmp_path):
    ok = [ether(p) for p in tcp_session(USER, N1, 40000, 443)]
    odd = [
        Ether(src=MAC_A, dst=MAC_B) / ARP(),  # not IP
        bytes(ether(IP(src=USER, dst=N1) / UDP()))[:20],  # cut inside the IP header
    ]
    capture = Pcapng()
    eth = capture.interface(1)
    user0 = capture.interface(147)  # a link type portmatrix does not decode
    capture.packets(ok + odd, iface=eth)
    capture.packet(b"\x00" * 30, iface=user0)
    path = capture.write(tmp_path / "mixed.pcapng")
    doc = document(check([path]))
    d = doc["decode"]
    assert d["frames"] == doc["summary"]["packets"] == len(ok) + len(odd) + 1
    assert d["ip"] == len(ok)
    assert d["non_ip"] == {"ARP": 1}
    assert d["unsupported_link_type"] == {"147 USER0": 1}
    assert sum(d["undecodable"].values()) == 1
    total = (
        d["ip"]
        + sum(d["non_ip"].values())
        + sum(d["unsupported_link_type"].values())
        + sum(d["undecodable"].values())
    )
    assert total == d["frames"]


def test_empty_capture(check, tmp_path):
    path = write_pcap(tmp_path / "empty.pcap", [])
    doc = document(check([path]))
    assert doc["summary"]["time_window"] is None
    assert (doc["summary"]["packets"], doc["summary"]["flows"]) == (0, 0)
    assert sum(doc["summary"]["verdicts"].values()) == 0
    assert doc["findings"] == []  # nothing to see: nothing reported missing
    assert {c["status"] for c in doc["coverage"] if c["required"]} == {"not-evaluated"}
    assert any(n.endswith("empty: it holds no packets") for n in doc["notices"])


def test_several_captures(check, tmp_path):
    one = write_pcap(tmp_path / "1.pcap", [ether(p) for p in tcp_session(USER, N1, 40000, 8443)])
    two = write_pcap(tmp_path / "2.pcap", [ether(p) for p in tcp_session(USER, N1, 40001, 8443)])
    doc = document(check([one, two]))
    assert [c["path"] for c in doc["inputs"]["captures"]] == [str(one), str(two)]
    (finding,) = [f for f in doc["findings"] if f["kind"] == "flow"]
    assert finding["flows"] == 2
    assert finding["frames"] == ["0:1", "1:1"]  # file:frame when several files were read


def test_every_field_is_documented(check, tmp_path):
    """Each field of the document is named in the module's docstring, where the
    contract is declared (STYLE.md, habit 5)."""
    path = write_pcap(tmp_path / "c.pcap", [ether(p) for p in tcp_session(USER, N1, 40000, 443)])
    doc = document(check([path]))
    text = document_module.__doc__
    names = set(doc) | set(doc["summary"]) | set(doc["capture_health"]) | set(doc["decode"])
    names |= set(doc["inputs"]) | set(doc["inputs"]["captures"][0])
    missing = sorted(n for n in names if n not in text)
    assert not missing, missing
