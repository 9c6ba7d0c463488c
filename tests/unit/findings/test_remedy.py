"""What to do, and the YAML to paste: every suggestion of a check with every kind
of problem, written as one site file, is a file `rules lint` accepts, and layered
on the matrix it allows what it was suggested for."""

from __future__ import annotations

import datetime as dt

from portmatrix.policy.lint import lint
from portmatrix.policy.matrix import load_matrix
from portmatrix.report.formats import render_suggestions
from portmatrix.testing.captures import tcp_session
from support.packets import refused, syn
from support.site import ADMIN, N1, N2, OUT1, USER


def test_suggestions_are_a_site_file_lint_accepts(check_packets, site, tmp_path):
    packets = (
        tcp_session(USER, N1, 40000, 8443)  # users -> nodes: a rule
        + tcp_session(N1, ADMIN, 40001, 22)  # wrong way: the reverse rule
        + tcp_session(OUT1, N2, 40002, 9000)  # no role: an exception naming the host
        + [syn(f"192.0.2.{k + 20}", N1, 1000 + k, 6000) for k in range(12)]  # a flood: none
        + [p for k in range(20) for p in refused("10.0.2.9", N2, 2000 + k, 3000 + k)]  # a scan
        + refused(N1, N2, 40003, 7000)  # allowed but refused: open the port, no YAML
    )
    result = check_packets(packets, today=dt.date(2025, 1, 1))
    by_kind = {(f.kind, f.verdict): f for f in result.findings}
    assert by_kind[("flood", "unexpected-port")].suggestion is None
    assert by_kind[("flow", "allowed")].suggestion is None
    assert by_kind[("flow", "allowed")].action.startswith("Open tcp/7000 from nodes to nodes")
    scan = by_kind[("scan", "scan")]
    assert "scanner-10-0-2-9" in scan.suggestion and "expires: '2025-04-01'" in scan.suggestion
    assert all(f.action for f in result.findings)
    text = render_suggestions(result)
    path = tmp_path / "suggested.yaml"
    path.write_text(text, encoding="utf-8")
    small = site("small")
    layered = load_matrix([str(small.matrix), str(path)])
    problems = lint(layered, None, dt.date(2025, 1, 1))
    assert [p for p in problems if p.severity == "error"] == []
    assert {r.id for r in layered.rules} >= {
        "site-users-to-nodes-tcp-8443",
        "site-nodes-to-admins-tcp-22",
    }
    assert {e.id for e in layered.exceptions} == {"allow-192-0-2-1-tcp-9000", "scanner-10-0-2-9"}
    # Layered on, the suggested entries allow what they were suggested for.
    from portmatrix.check import run_check
    from portmatrix.testing.captures import ether, write_pcap

    capture = write_pcap(
        tmp_path / "again.pcap",
        [ether(p) for p in tcp_session(USER, N1, 40000, 8443) + tcp_session(OUT1, N2, 40002, 9000)],
    )
    again = run_check(
        [str(capture)],
        [str(small.matrix), str(path)],
        str(small.inventory),
        today=dt.date(2025, 1, 1),
    )
    assert again.classified.counts()["allowed"] == 2
    assert [f for f in again.findings if f.kind == "flow"] == []
