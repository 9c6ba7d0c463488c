"""Escaping per output kind, and hostile strings through every output: a capture
whose interface name is a spreadsheet formula wrapped in terminal escapes, a
matrix whose name, services and descriptions carry Markdown, HTML, escape
sequences and Unicode line separators, a capture file named with an escape."""

from __future__ import annotations

import csv
import io
import json

import pytest
from scapy.layers.inet import TCP

from portmatrix.report import escape
from portmatrix.testing.captures import Pcapng, ether, ip, tcp_session

ESC = "\x1b]0;pwned\x07\x1b[2J"  # set the window title, clear the screen
FORMULA = '=HYPERLINK("http://evil.example/x","click")'
LINE_BREAKS = "\u2028\u2029\u0085"
YAML_ESC = "\\x1b]0;pwned\\x07\\x1b[2J"  # ESC, as a double-quoted YAML string writes it


def test_visible_shows_every_control_character():
    shown = escape.visible("a\x1b[2Jb\x07\r\n\t\x7f\x9b\u202egnp.exe" + LINE_BREAKS)
    assert shown == ("a\\x1b[2Jb\\x07\\r\\n\\t\\x7f\\x9b\\u202egnp.exe\\u2028\\u2029\\x85")
    assert escape.visible("plain → text, ünïcode") == "plain → text, ünïcode"


@pytest.mark.parametrize("first", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cells_that_start_a_formula_get_a_quote(first):
    assert escape.csv_cell(first + "1+1") == "'" + escape.visible(first) + "1+1"
    assert escape.csv_row(["ok", 5, -3, None]) == ["ok", 5, -3, None]  # numbers stay
    assert escape.csv_cell("a\x1bb") == "a\\x1bb"


def test_markdown_is_literal_text_on_one_line():
    text = "x\n## Findings\n| a | b |\n<script>[link](http://e) *b* _i_ `c` ~~s~~ &amp; \\"
    assert escape.markdown(text) == (
        "x ## Findings \\| a \\| b \\| \\<script\\>\\[link\\](http://e) \\*b\\* \\_i\\_ "
        "\\`c\\` \\~\\~s\\~\\~ \\&amp; \\\\"
    )
    assert escape.markdown_code("a`b") == "``a`b``" and escape.markdown_code("`x") == "`` `x ``"


def test_json_lines_never_hold_a_line_separator():
    line = escape.json_line({"a": "x" + LINE_BREAKS + "y"})
    assert json.loads(line) == {"a": "x" + LINE_BREAKS + "y"}
    assert len(line.splitlines()) == 1 and not set(line) & set(LINE_BREAKS)


def test_html_escapes_quotes_and_controls():
    assert escape.html("<a href='x' onclick=\"y\">\x1b") == (
        "&lt;a href=&#x27;x&#x27; onclick=&quot;y&quot;&gt;\\x1b"
    )


HOSTILE_MATRIX = f"""\
name: "evil\\u2028\\n## Findings\\nNo findings. {YAML_ESC} <script>alert(1)</script>"
roles:
  nodes: "Nodes {YAML_ESC}"
  users: Users
rules:
  - id: node-rpc
    service: '{FORMULA}'
    proto: tcp
    ports: 7000
    from: nodes
    to: nodes
    required: true
    description: "line\\u2028break\\u2029and\\x85more | *bold* [x](http://e) {YAML_ESC}"
  - id: web
    service: "@SUM(1+1)\\r"
    proto: tcp
    ports: 443
    from: users
    to: nodes
"""
HOSTILE_INVENTORY = """\
roles:
  nodes: [10.0.0.1-10.0.0.3]
  users: [10.0.2.0/24]
"""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A capture named with an escape, whose interface name is a formula and escapes,
    and a matrix of hostile strings."""
    folder = tmp_path_factory.mktemp("hostile")
    capture = Pcapng()
    capture.interface(1, name=FORMULA + ESC + LINE_BREAKS, tsresol=9)
    packets = tcp_session("10.0.2.7", "10.0.0.1", 40000, 443)  # allowed: web
    packets += tcp_session("10.0.2.7", "10.0.0.2", 40001, 8443)  # not allowed
    packets.append(ip("10.0.0.1", "10.0.2.7") / TCP(sport=40002, dport=22, flags="S"))
    for k, pkt in enumerate(packets):
        capture.packet(ether(pkt), ts=1_700_000_000_000_000_000 + k * 1000)
    path = capture.write(folder / f"cap{ESC}.pcapng")
    matrix = folder / "matrix.yaml"
    matrix.write_text(HOSTILE_MATRIX, encoding="utf-8")
    inventory = folder / "inventory.yaml"
    inventory.write_text(HOSTILE_INVENTORY, encoding="utf-8")
    return folder, str(path), str(matrix), str(inventory)


def outputs_of(run_cli, hostile) -> dict[str, str]:
    """Every report and export of the hostile site, as written to files."""
    folder, cap, matrix, inventory = hostile
    reports = {
        ext: folder / f"report.{ext}" for ext in ("txt", "md", "jsonl", "csv", "html", "json")
    }
    args = ["check", cap, "--rules", matrix, "--inventory", inventory]
    for path in reports.values():
        args += ["-o", str(path)]
    flows_csv = folder / "flows-export.csv"
    result = run_cli(*args, "--flows", str(flows_csv))
    assert result.exit_code == 1, result.stderr
    out = {ext: path.read_text(encoding="utf-8") for ext, path in reports.items()}
    out["check --flows"] = flows_csv.read_text(encoding="utf-8")
    for fmt in ("csv", "table", "json", "jsonl"):
        flows = run_cli("flows", cap, "--format", fmt)
        assert flows.exit_code == 0, flows.stderr
        out[f"flows {fmt}"] = flows.stdout
    for fmt in ("csv", "markdown", "table", "json"):
        shown = run_cli("rules", "show", matrix, "--format", fmt)
        assert shown.exit_code == 0, shown.stderr
        out[f"rules {fmt}"] = shown.stdout
    out["stderr"] = result.stderr
    return out


@pytest.fixture(scope="module")
def written(hostile):
    from click.testing import CliRunner

    from portmatrix.cli import main

    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return outputs_of(run, hostile)


def test_no_output_carries_a_raw_control_character(written):
    for name, text in written.items():
        for char in ("\x1b", "\x07", "\u202e"):
            assert char not in text, f"{char!r} reaches {name}"


def test_every_csv_cell_is_inert_in_a_spreadsheet(written):
    for name in ("csv", "check --flows", "flows csv", "rules csv"):
        cells = [c for row in csv.reader(io.StringIO(written[name])) for c in row]
        assert any(FORMULA[1:20] in c for c in cells), name  # the value is there
        for cell in cells:
            assert not cell.startswith(escape.FORMULA_STARTS), f"{name}: {cell!r}"


def test_the_interface_name_reaches_the_flow_exports_quoted(written):
    rows = list(csv.DictReader(io.StringIO(written["flows csv"])))
    assert rows and all(r["interface"].startswith("'=HYPERLINK(") for r in rows)


def test_markdown_gets_no_heading_table_or_html_from_the_matrix(written):
    for name in ("md", "rules markdown"):
        lines = written[name].splitlines()
        headings = [x for x in lines if x.startswith("#")]
        assert all(x.startswith(("## portmatrix check", "### ")) for x in headings), headings
        assert not any(x.startswith("No findings") for x in lines)
        assert "<script>" not in written[name]
    table = [x for x in written["rules markdown"].splitlines() if x.startswith("|")]
    assert {x.count("|") - x.count("\\|") for x in table} == {10}  # 9 cells, on one line each


def test_json_lines_are_one_object_per_line(written):
    findings = json.loads(written["json"])["findings"]
    lines = written["jsonl"].splitlines()
    assert len(lines) == len(findings) >= 2
    for text in (written["jsonl"], written["json"], written["flows json"], written["flows jsonl"]):
        assert not set(text) & set(LINE_BREAKS)
    # The same values, escaped: a JSON reader gets the separator back.
    assert all("\u2028" in json.loads(x)["rule"]["ruleset"] for x in lines)


def test_html_stays_safe_with_these_strings(written):
    page = written["html"]
    assert "<script" not in page.lower() and "onclick" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\\x1b]0;pwned\\x07" in page  # shown, not acted on


def test_terminal_outputs_show_the_escapes(written):
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in written["txt"]
    assert "\\x1b" in written["rules table"]
    assert "cap\\x1b]0;pwned" in written["md"] and "cap\\x1b]0;pwned" in written["html"]


def test_watch_lines_show_the_escapes():
    from types import SimpleNamespace

    from portmatrix.watch.lines import event_line

    finding = SimpleNamespace(
        kind="coverage",
        rule="node-rpc",
        severity="error",
        verdict="missing-required",
        id="PM-1",
        message=f"required rule node-rpc ({FORMULA}{ESC}) has no established flow",
    )
    line = event_line(SimpleNamespace(kind="new", finding=finding))
    assert "\x1b" not in line and "\\x1b]0;pwned" in line


def test_errors_on_stderr_show_the_escapes(run_cli, tmp_path):
    result = run_cli("check", str(tmp_path / f"missing{ESC}.pcap"), "--rules", "thoughtspot")
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "missing\\x1b]0;pwned" in result.stderr
