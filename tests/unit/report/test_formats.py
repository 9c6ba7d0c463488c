"""Machine formats of a check: JSON (the document), JSON lines with Elastic Common
Schema fields, CSV of findings, Markdown for tickets."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest

from portmatrix.report import escape, formats
from portmatrix.report.document import document
from portmatrix.testing.captures import ip, tcp_session
from support.site import ADMIN, N1, N1_6, N2, N2_6, USER

TODAY = dt.date(2025, 1, 1)


@pytest.fixture
def result(check_packets):
    """Flow findings of every severity (v4, v6, ICMPv6) and coverage findings."""
    packets = [
        *tcp_session(USER, N1, 40000, 8443),  # error
        ip(ADMIN, N1) / TCP(sport=40001, dport=22, flags="S"),  # warning: allowed, unanswered
        ip(USER, N2) / UDP(sport=40002, dport=161) / b"x",  # info
        *tcp_session(N1_6, "fd00:1::5", 40003, 22),  # wrong-direction, IPv6
        ip(N2_6, N1_6) / ICMPv6EchoRequest(id=5),  # icmpv6 (unexpected-port: no v6 rule)
    ]
    return check_packets(packets)


def test_json_is_the_document(result):
    doc = json.loads(formats.render_json(result))
    assert doc == json.loads(json.dumps(document(result)))
    assert {f["severity"] for f in doc["findings"]} == {"error", "warning", "info"}


def test_jsonl_is_one_ecs_event_per_finding(result):
    doc = document(result)
    events = [json.loads(line) for line in formats.render_jsonl(result).splitlines()]
    assert len(events) == len(doc["findings"]) == len(result.findings)
    by_id = {e["event"]["id"]: e for e in events}
    assert set(by_id) == {f.id for f in result.findings}
    severity = {"error": 3, "warning": 2, "info": 1}
    for f in result.findings:
        e = by_id[f.id]
        assert e["event"]["action"] == f.verdict
        assert e["event"]["severity"] == severity[f.severity]
        assert isinstance(e["event"]["severity"], int)
        assert e["event"]["kind"] == "alert" and e["event"]["category"] == ["network"]
        assert e["message"] == f.message
        assert e["rule"]["ruleset"] == "small"
        assert e["@timestamp"]  # always set: Elastic data streams need it
        assert e["ecs"]["version"] and e["event"]["dataset"] == "portmatrix.findings"
        assert e["rule"]["name"] and e["rule"]["id"]
        if f.kind == "flow":
            assert e["source"] == {
                "ip": f.initiator,
                "address": f.initiator,
                "domain": ",".join(f.initiator_roles),
            }
            assert e["destination"]["ip"] == f.responder
            assert e["destination"].get("port") == (f.port if f.proto != "icmpv6" else None)
            assert e["network"]["packets"] == f.packets
            assert e["network"]["community_id"] == f.community_ids
            assert e["@timestamp"] == f.first_seen
            assert e["event"]["outcome"] == (
                "success" if "established" in f.outcomes else "failure"
            )
        else:
            assert "ip" not in e.get("source", {}) and "ip" not in e.get("destination", {})
            assert e["rule"]["id"] == f.rule
            assert e["@timestamp"] == doc["summary"]["time_window"]["first"]
    transports = {
        (e["source"]["ip"], by_id[e["event"]["id"]] and e["event"]["id"]): e["network"]["transport"]
        for e in events
        if "ip" in e.get("source", {})
    }
    ports = {f.id: (f.initiator, f.port) for f in result.findings}
    assert {ports[i]: t for (_, i), t in transports.items()} == {
        (USER, 8443): "tcp",
        (ADMIN, 22): "tcp",
        (USER, 161): "udp",
        (N1_6, 22): "tcp",
        (N2_6, 128): "ipv6-icmp",  # the IANA keyword ECS asks for
    }


def test_csv_has_one_row_per_finding(result):
    rows = list(csv.DictReader(io.StringIO(formats.render_csv(result))))
    assert tuple(rows[0]) == formats.CSV_COLUMNS
    assert [r["id"] for r in rows] == [f.id for f in result.findings]
    first = rows[0]
    f = result.findings[0]
    assert (first["severity"], first["verdict"], first["port"]) == (
        f.severity,
        f.verdict,
        str(f.port),
    )
    assert first["frames"] == " ".join(f.frames)
    assert first["outcomes"] == " ".join(f"{k}={v}" for k, v in f.outcomes.items())
    coverage = [r for r in rows if r["kind"] == "coverage"]
    assert coverage and all(r["initiator"] == "" for r in coverage)


def test_markdown_has_the_findings_table(result):
    text = formats.render_markdown(result)
    lines = text.splitlines()
    head = (
        "| severity | what | initiator | responder | service | application | flows | "
        "first seen | last seen | what happened, and what to do | Wireshark filter | id |"
    )
    at = lines.index(head)
    assert lines[at - 2] == "### Findings"
    assert lines[at + 1] == "|---|---|---|---|---|---|---|---|---|---|---|---|"
    rows = lines[at + 2 : at + 2 + len(result.findings)]
    assert all(r.startswith("| ") and r.endswith(" |") for r in rows)
    assert rows[0].startswith(
        f"| error | unexpected-port | {USER} (users) | {N1} (nodes) | tcp/8443 |  | 1 | 20"
    )
    first = result.findings[0]
    assert f"| {first.first_seen} | {first.last_seen} |" in rows[0]
    code = escape.markdown_code(first.filter, table=True)  # a code span, | escaped for the table
    assert code in rows[0] and f"**{formats._md(first.action)}**" in rows[0]
    # Every row has the table's 12 cells (the last the finding's id, for baselines):
    # messages with a `|` would be escaped.
    assert all(r.replace("\\|", "").count("|") == 13 for r in rows)
    assert [r.rsplit("|", 2)[1].strip(" `") for r in rows] == [f.id for f in result.findings]
    assert "### Required services" in lines
    assert "| node-rpc | RPC | tcp/7000 | 0 | 0 | missing-required |" in lines


def test_markdown_without_findings(check_packets):
    packets = tcp_session(N1, N2, 40000, 7000) + [
        ip(N1, N2) / UDP(sport=40001, dport=7946) / b"a",
        ip(N2, N1) / UDP(sport=7946, dport=40001) / b"b",
    ]
    text = formats.render_markdown(check_packets(packets))
    assert "No findings." in text
    assert "| node-rpc | RPC | tcp/7000 | 1 | 0 | ok |" in text


def test_markdown_escapes_pipes():
    from portmatrix.report.escape import markdown

    assert markdown("a|b\nc") == "a\\|b c"


def test_a_finding_is_worded_alike_in_every_report(check_packets):
    # one wording (formats.label) in the terminal, in both places of the HTML
    # report (the matrix's chips and the finding) and in the Markdown table
    from portmatrix.report.html import render_html
    from portmatrix.report.text import render_text

    flood = [
        ip(f"192.0.2.{k}", N1) / TCP(sport=1000 + k, dport=443, flags="S") for k in range(1, 13)
    ]
    sweep = [
        ip(USER, f"10.0.3.{k + 1}") / TCP(sport=41000 + k, dport=23, flags="S") for k in range(30)
    ]
    unanswered = [ip(ADMIN, N1) / TCP(sport=40001, dport=22, flags="S")]
    result = check_packets(flood + sweep + unanswered)
    doc = document(result)
    labels = {f["id"]: formats.label(f) for f in doc["findings"]}
    assert {"scan", "flood, unexpected-source", "allowed but unanswered"} <= set(labels.values())
    text = render_text(result, width=400)
    html = render_html(result)
    markdown = formats.render_markdown(result)
    for f in doc["findings"]:
        word = labels[f["id"]]
        assert f" {word}  " in text
        assert f"<b>{escape.html(word)}</b>" in html
        if f["kind"] not in ("coverage", "matrix") and not f["part_of"]:
            assert f">{escape.html(word)} {escape.html(formats.what(f))}</a>" in html
        row = next(line for line in markdown.splitlines() if f"`{f['id']}`" in line)
        assert row.split(" | ")[1].endswith(word) or f"{word} (part of" in row
