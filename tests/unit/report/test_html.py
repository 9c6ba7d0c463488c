"""The HTML report: self-contained (nothing fetched) and every string from the
inputs escaped. What a person sees in a real browser:
tests/conformance/test_chromium_report.py."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from scapy.layers.inet import TCP

from portmatrix.check import run_check
from portmatrix.report.html import render_html
from portmatrix.testing.captures import ether, ip, tcp_session, write_pcap
from support import paths
from support.site import N1, USER

DEMO, INV = str(paths.DEMO), str(paths.DEMO_INVENTORY)


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
    fetched = [
        v
        for _, attrs in parsed.tags
        for a, v in attrs.items()
        if a == "src" or (a == "href" and not v.startswith("#"))  # links within the page
    ]
    assert fetched == []
    assert "@import" not in demo_html and "url(" not in demo_html


def test_strings_from_the_inputs_are_escaped(tmp_path, site):
    small = site()
    evil = tmp_path / "<script>alert(1)<\\script>&.pcap"
    packets = tcp_session(USER, N1, 40000, 8443) + [
        ip(N1, USER) / TCP(sport=8443, dport=40001, flags="S")
    ]
    write_pcap(evil, [ether(p) for p in packets])
    html = render_html(run_check([str(evil)], [str(small.matrix)], str(small.inventory)))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;\\script&gt;&amp;.pcap" in html


def test_a_time_that_is_none_leaves_the_timeline_out_not_a_crash(tmp_path):
    from portmatrix.report import html as html_module

    assert html_module._seconds("") is None and html_module._seconds("NaTZ") is None
    doc = {
        "summary": {"time_window": {"first": "", "last": ""}},
        "findings": [{"first_seen": "", "last_seen": "", "severity": "error", "part_of": ""}],
    }
    assert "No finding with a time" in html_module._timeline(doc)
