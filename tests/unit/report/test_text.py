"""The terminal report: fits its width, colour only when asked, at most SHOWN
findings per severity, inputs and a one-line summary."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest
from scapy.layers.inet import TCP

from portmatrix import __version__
from portmatrix.check import run_check
from portmatrix.report import text as text_module
from portmatrix.report.text import render_text
from portmatrix.testing.captures import ip, tcp_session
from support.paths import REPO as ROOT
from support.site import ADMIN, ADMIN_6, N1, N1_6, USER

TODAY = dt.date(2025, 1, 1)
ANSI = re.compile(r"\x1b\[")


def syns(count: int):
    """`count` unanswered SYNs, each from another host with no role to another port of
    node 1: as many distinct info findings (no scan, no many sources)."""
    return [
        ip(f"192.0.2.{k + 10}", N1) / TCP(sport=40000, dport=9000 + k, flags="S")
        for k in range(count)
    ]


@pytest.fixture(scope="module")
def demo():
    import os

    here = os.getcwd()
    os.chdir(ROOT)
    try:
        return run_check(
            ["captures/thoughtspot-demo.pcap"],
            ["thoughtspot"],
            "captures/thoughtspot-demo.inventory.yaml",
            today=TODAY,
        )
    finally:
        os.chdir(here)


def test_demo_fits_80_columns(demo):
    text = render_text(demo, width=80)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert max(len(line) for line in lines) > 70  # the width is used, not a narrow default


def test_long_paths_and_ipv6_still_fit(check_packets, tmp_path):
    deep = tmp_path / ("a-directory-with-a-rather-long-name-" * 3) / "and-deeper"
    packets = tcp_session(N1_6, ADMIN_6, 40000, 22) + tcp_session(N1, ADMIN, 40001, 22)
    result = check_packets(packets, name=deep / "capture-with-a-long-name-too.pcap")
    assert len(str(deep)) > 80
    for width in (80, 100):
        lines = render_text(result, width=width).splitlines()
        assert max(len(line) for line in lines) <= width, width
    # The cut path is still all there.
    assert str(deep).replace(" ", "") in "".join(render_text(result).split())


def test_colour_only_when_asked(demo):
    plain = render_text(demo, color=False)
    assert not ANSI.search(plain)
    coloured = render_text(demo, color=True)
    assert ANSI.search(coloured)
    assert ANSI.sub("", coloured).count("✗") == plain.count("✗") == 7
    assert plain.count("↳") == 2  # the flow findings two coverage findings rest on


def test_header_findings_coverage_summary(demo):
    text = render_text(demo)
    lines = text.splitlines()
    assert lines[0].startswith(f"portmatrix {__version__} check — matrix thoughtspot (bundled)")
    flat = " ".join(text.split())  # lines are wrapped at 80 columns
    assert "capture captures/thoughtspot-demo.pcap: pcap, 21.4 kB, 268 frames" in flat
    digest = hashlib.sha256(Path(demo.traffic.captures[0].path).read_bytes()).hexdigest()
    assert f"sha256 {digest}" in flat  # in full: a report must match its evidence
    assert "ERRORS (7)" in lines and "WARNINGS (1)" in lines and "INFOS (2)" in lines
    assert lines.index("ERRORS (7)") < lines.index("WARNINGS (1)") < lines.index("INFOS (2)")
    assert "Required services" in lines
    assert flat.endswith(
        "33 allowed · 1 wrong-direction · 2 unexpected-source · 3 unexpected-port · "
        "1 out-of-scope | 7 errors, 1 warnings, 2 info (each problem once)"
    )


def test_at_most_shown_per_severity(check_packets):
    shown = text_module.SHOWN
    result = check_packets(syns(shown + 2))
    infos = [f for f in result.findings if f.severity == "info"]
    assert len(infos) == shown + 2
    text = render_text(result)
    assert f"INFOS ({shown + 2})" in text
    listed = [line for line in text.splitlines() if line.startswith(" · ")]
    assert len(listed) == shown
    flat = " ".join(text.split())
    assert "… and 2 more (2 unexpected-port): every finding is in --format json" in flat


def test_shown_is_per_severity(check_packets, monkeypatch):
    monkeypatch.setattr(text_module, "SHOWN", 2)
    packets = syns(3) + tcp_session(USER, N1, 40001, 8443) + tcp_session(N1, ADMIN, 40002, 22)
    result = check_packets(packets)
    text = render_text(result)
    flat = " ".join(text.split())
    # errors: 2 flows + 2 missing-required = 4, two listed
    assert "ERRORS (4)" in text
    assert "… and 2 more (2 missing-required)" in flat
    assert "… and 1 more (1 unexpected-port)" in flat  # infos: 3, two listed
    assert len([line for line in text.splitlines() if line.startswith(" ✗ ")]) == 2


def test_nothing_more_when_all_fit(check_packets):
    text = render_text(check_packets(syns(2)))
    assert "more (" not in text


def test_baseline_count_in_the_summary(check_packets):
    result = check_packets(syns(1))
    result.known = 4
    assert "4 known (baseline)" in " ".join(render_text(result).split())


def test_no_flows(check_packets):
    text = render_text(check_packets([]))
    flat = " ".join(text.split())
    assert "no flows | 0 errors, 0 warnings, 0 info" in flat
    assert "no traffic at all: the coverage of required services is not evaluated" in flat
    assert "window" not in text


def test_flow_logs_are_worded_as_records_not_packets(tmp_path):
    from portmatrix.check import run_check
    from portmatrix.report import CHECK_FORMATS

    log = tmp_path / "a.log"
    log.write_text(
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
        "bytes start end action log-status\n"
        "2 1 eni-1 10.0.0.1 10.0.0.2 40000 443 6 3 300 1700000000 1700000060 ACCEPT OK\n"
        "2 1 eni-1 10.0.0.2 10.0.0.1 443 40000 6 3 300 1700000000 1700000060 ACCEPT OK\n"
    )
    text = CHECK_FORMATS["text"](run_check([str(log)], ["thoughtspot"], None, records="auto"))
    text = " ".join(text.split())  # wrapped at the width of the report
    assert f"flow log {log}: aws-vpc" in text and "2 records" in text
    assert "2 records → 1 flows" in text
    assert "packets →" not in text and "decoded IP" not in text and "frames ;" not in text
