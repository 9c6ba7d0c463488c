"""Labels on findings: the flows behind each finding (answered first, at most
PER_FINDING), the counts and details each finding carries, and no labels (one
notice) from an input that cannot be read twice."""

from __future__ import annotations

import numpy as np

from portmatrix.apps import findings as app_findings
from portmatrix.check import run_check
from portmatrix.testing.captures import write_pcap
from support import apps
from support.packets import refused
from support.site import N1, USER


def check(tmp_path, site, packets, **options):
    s = site("small")
    capture = write_pcap(tmp_path / "c.pcap", apps.frames_of(packets))
    return run_check([str(capture)], [str(s.matrix)], str(s.inventory), **options), capture


def test_findings_carry_their_flows_labels(tmp_path, site):
    ssh = apps.BY_LABEL["ssh"].messages
    packets = apps.conversation(USER, N1, 40000, 2222, ssh)
    packets += apps.conversation(USER, N1, 40001, 2222, apps.UNIDENTIFIED_CASE.messages)
    packets += refused(USER, N1, 40002, 2222)
    result, _ = check(tmp_path, site, packets, apps=True)
    (finding,) = [f for f in result.findings if f.port == 2222]
    assert finding.apps == {"no-payload": 1, "ssh": 1, "unidentified": 1}
    assert finding.app_details == ["ssh server=OpenSSH_9.2p1"]
    assert result.labels is not None and len(result.labels.flows) == 3


def test_without_apps_nothing_is_labelled(tmp_path, site):
    packets = apps.conversation(USER, N1, 40000, 2222, apps.BY_LABEL["ssh"].messages)
    result, _ = check(tmp_path, site, packets)
    assert result.labels is None and all(not f.apps for f in result.findings)


def test_at_most_per_finding_answered_first(tmp_path, site, monkeypatch):
    monkeypatch.setattr(app_findings, "PER_FINDING", 2)
    packets = refused(USER, N1, 40000, 2222)  # the earliest, but not answered
    for k in range(3):
        packets += apps.conversation(USER, N1, 40001 + k, 2222, apps.BY_LABEL["ssh"].messages)
    result, _ = check(tmp_path, site, packets)
    chosen = app_findings.chosen_flows(result)
    flows = result.traffic.flows
    assert len(chosen) == 2 and result.classified.answered[chosen].all()
    assert sorted(flows["init_port"][chosen].tolist()) == [40001, 40002]


def test_standard_input_cannot_be_read_again(tmp_path, site):
    packets = apps.conversation(USER, N1, 40000, 2222, apps.BY_LABEL["ssh"].messages)
    result, _ = check(tmp_path, site, packets)
    labels = app_findings.label_result(result, ["-"])
    assert not len(labels.flows)
    assert any("cannot be read a second time" in n for n in result.notices)


def test_detail_text():
    assert app_findings.detail_text("tls", {"sni": "a.example", "alpn": "h2"}) == (
        "tls sni=a.example alpn=h2"
    )
    assert app_findings.detail_text("ssh", {}) == ""

    class Empty:  # a result with no findings: nothing to label
        findings = ()
        traffic = type("T", (), {"flows": None})()
        classified = None

    assert np.array_equal(app_findings.chosen_flows(Empty()), [])
