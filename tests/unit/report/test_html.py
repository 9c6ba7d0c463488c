"""The HTML report: self-contained, escaped, and what a person sees in a real browser.

The browser tests need Debian's chromium (installed by scripts/setup.sh --test);
they skip outside CI when it is missing, never in CI.
"""

from __future__ import annotations

import os
import re
import shutil
from html.parser import HTMLParser

import pytest
from scapy.layers.inet import TCP

from portmatrix.check import run_check
from portmatrix.report.html import render_html
from portmatrix.testing.captures import ether, ip, tcp_session, write_pcap
from support import golden
from support.paths import REPO as ROOT
from support.site import N1, USER, write_site

DEMO = str(ROOT / "captures" / "thoughtspot-demo.pcap")
INV = str(ROOT / "captures" / "thoughtspot-demo.inventory.yaml")
HAVE_CHROMIUM = shutil.which("chromium") is not None
if not HAVE_CHROMIUM and os.environ.get("CI"):
    pytest.fail(
        "CI must run the browser tests: scripts/setup.sh --test installs chromium", pytrace=False
    )
needs_chromium = pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium")


class Elements(HTMLParser):
    """Tags and their attributes, and the text of table cells, as parsed."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.fixture(scope="module")
def demo_html() -> str:
    return render_html(run_check([DEMO], ["thoughtspot"], INV))


def test_self_contained(demo_html):
    parsed = Elements()
    parsed.feed(demo_html)
    tags = {t for t, _ in parsed.tags}
    assert "script" not in tags and "link" not in tags and "img" not in tags
    assert "iframe" not in tags and "object" not in tags
    assert not [a for _, attrs in parsed.tags for a in attrs if a in ("src", "href")]
    assert "@import" not in demo_html and "url(" not in demo_html


def test_strings_from_the_inputs_are_escaped(tmp_path):
    site = write_site(tmp_path)
    evil = tmp_path / "<script>alert(1)<\\script>&.pcap"
    packets = tcp_session(USER, N1, 40000, 8443) + [
        ip(N1, USER) / TCP(sport=8443, dport=40001, flags="S")
    ]
    write_pcap(evil, [ether(p) for p in packets])
    html = render_html(run_check([str(evil)], [str(site.matrix)], str(site.inventory)))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;\\script&gt;&amp;.pcap" in html


@needs_chromium
def test_what_a_person_sees_in_chromium(tmp_path, demo_html):
    page = tmp_path / "report.html"
    page.write_text(demo_html, encoding="utf-8")
    run = golden.chromium(
        page, "--dump-dom", "--enable-logging=stderr", "--v=0", profile=tmp_path / "profile"
    )
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    # The browser built the tables a person reads: 12 findings, a grid of 10
    # required services on the role they run on.
    findings = re.search(r'<table id="findings">(.*?)</table>', dom, re.S).group(1)
    assert findings.count("<tr") == 13  # header + 12 findings
    assert findings.count('class="error"') >= 9
    grid = re.search(r'<table id="coverage-grid">(.*?)</table>', dom, re.S).group(1)
    assert grid.count("<tr") == 2 and "nodes → nodes" in grid
    assert grid.count('class="ok"') == 7
    assert grid.count('class="required-unreachable"') == 2
    assert grid.count('class="missing-required"') == 1
    assert '<svg id="timeline"' in dom and dom.count("<rect") == 9
    assert "PM-ea549395d8" in dom  # ids, for tickets and baselines
    # No console errors, nothing fetched.
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line]
    assert console == []
    assert "net::ERR" not in run.stderr


@needs_chromium
def test_screenshot_renders(tmp_path):
    out = tmp_path / "shot.png"
    golden.screenshot(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 50_000  # a page with tables, not a blank one


def test_a_time_that_is_none_leaves_the_timeline_out_not_a_crash(tmp_path):
    from portmatrix.report import html as html_module

    assert html_module._seconds("") is None and html_module._seconds("NaTZ") is None
    doc = {
        "summary": {"time_window": {"first": "", "last": ""}},
        "findings": [{"first_seen": "", "last_seen": "", "severity": "error"}],
    }
    assert "No finding with a time" in html_module._timeline(doc)
