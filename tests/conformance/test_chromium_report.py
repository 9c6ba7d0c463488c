"""The HTML report in a real browser (Debian's chromium, headless, no network):
the tables and timeline a person sees, no console errors, nothing fetched, and
the screenshot the README shows renders."""

from __future__ import annotations

import re

import pytest

from portmatrix.check import run_check
from portmatrix.report.html import render_html
from support import golden, paths, tools

DEMO, INV = str(paths.DEMO), str(paths.DEMO_INVENTORY)


@pytest.fixture(autouse=True)
def chromium():
    """scripts/setup.sh --test installs it."""
    return tools.program("chromium", "Debian: apt-get install chromium")


@pytest.fixture(scope="module")
def demo_html() -> str:
    return render_html(run_check([DEMO], ["thoughtspot"], INV))


def test_what_a_person_sees_in_chromium(tmp_path, demo_html):
    page = tmp_path / "report.html"
    page.write_text(demo_html, encoding="utf-8")
    run = golden.chromium(
        page, "--dump-dom", "--enable-logging=stderr", "--v=0", profile=tmp_path / "profile"
    )
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    # The browser built what a person reads: 10 problems (2 of them with the flow
    # finding they rest on), collapsible, errors first; the role x role matrix; a grid
    # of 10 required services on the role they run on.
    findings = re.search(r'<div id="findings">(.*)</div>', dom, re.S).group(1)
    assert findings.count('<details class="finding') == 12
    assert findings.count('<details class="finding error part"') == 2
    assert findings.index("ERRORS (7)") < findings.index("WARNINGS (1)")
    assert "allowed but refused" in findings and '<code class="id">' in findings
    matrix = re.search(r'<table id="role-matrix">(.*?)</table>', dom, re.S).group(1)
    assert matrix.count('class="chip v-error"') == 4  # four errors between roles
    assert 'class="chip missing"' in matrix  # hdfs-namenode-rpc, never seen
    grid = re.search(r'<table id="coverage-grid">(.*?)</table>', dom, re.S).group(1)
    assert grid.count("<tr") == 2 and "nodes → nodes" in grid
    assert grid.count('class="ok"') == 7
    assert grid.count('class="required-unreachable"') == 2
    assert grid.count('class="missing-required"') == 1
    # A lane per severity, a bar per flow finding with a time, ticks with times.
    assert '<svg id="timeline"' in dom and dom.count("<rect") == 3 + 7
    assert "10:00:10" in dom
    assert "PM-602baf9d52" in dom  # ids, for tickets and baselines
    # No console errors, nothing fetched.
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line]
    assert console == []
    assert "net::ERR" not in run.stderr


def test_screenshot_renders(tmp_path):
    out = tmp_path / "shot.png"
    golden.screenshot(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 50_000  # a page with tables, not a blank one
