"""The check result as one plain document: the JSON report, and the source of
every other check report.

Fields (schema_version 2; every field in portmatrix/report/schema.json, absent
values are null):
  tool            {"name", "version"}
  report          command (the command line, as a list) and created (ISO 8601 UTC):
                  null when the report was not made by the command line
  inputs          captures (path, format, size, sha256, frames, truncated, unreadable:
                  why a file could not be read at all, else null, drops,
                  dns_names: role hostnames its DNS answers resolved, client_names:
                  ClientHellos, HTTP requests and QUIC Initials seen / damaged / cut
                  while learning role hostnames from them, interfaces), rules
                  (files), matrix (name), inventory (path or null), filters (the
                  narrowing asked for: since, until, hosts, ports, verdicts, roles;
                  {} when none)
  summary         packets, flows, verdicts (count per verdict), findings (count per
                  severity), known_findings (suppressed by --baseline),
                  time_window {first, last} (ISO 8601 UTC)
  findings        list of findings, one per problem (see portmatrix.findings.Finding
                  and docs/findings.md), errors first, then the biggest
  thresholds      when flows roll up into one finding: scan_ports, scan_hosts,
                  many_sources (findings.model.Thresholds)
  coverage        one entry per rule (see portmatrix.findings.Coverage)
  decode          frame buckets: frames = ip + non_ip + unsupported_link_type +
                  undecodable (non_ip by ethertype, unsupported_link_type by link
                  type, undecodable by reason: counts); besides, among the ip frames,
                  tcp_flags_cut_by_snaplen, tunnelled_undecodable (outer packet
                  decoded, inner one not) and tunnelled_too_deep (those of them past
                  a depth limit: more than 3 tunnels, 12 tags or labels, 256 IPv6
                  extension headers); timestamps_carried: frames whose record
                  has no time (pcapng simple packet blocks), given the one before's;
                  timestamps_out_of_range: frames whose recorded time is out of range
                  (before 1970, past 2262, a clock that overflows), likewise
  capture_health  tcp_flows, tcp_one_way, drops, weakened (conclusions about missing
                  services are weaker)
  notices         sentences about what weakens the result
  what_if         with --what-if only: what another matrix would change
                  (see portmatrix.report.what_if_view)
"""

from __future__ import annotations

import numpy as np

from portmatrix import __version__
from portmatrix.report import what_if_view
from portmatrix.report.result import Result
from portmatrix.report.summary import decode_document, inputs_summary
from portmatrix.textforms import iso

SCHEMA_VERSION = 2


def document(result: Result) -> dict:
    doc = _document(result)
    if (part := what_if_view.document_part(result)) is not None:
        doc["what_if"] = part
    return doc


def _document(result: Result) -> dict:
    t = result.traffic
    window = None
    if t.first_ts is not None:
        first, last = iso(np.array([t.first_ts, t.last_ts]))
        window = {"first": str(first), "last": str(last)}
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "portmatrix", "version": __version__},
        "report": {
            "command": getattr(result, "command", None),
            "created": getattr(result, "created", None),
        },
        "thresholds": result.thresholds.describe(),
        "inputs": {
            "captures": inputs_summary(t),
            "rules": result.matrix.files,
            "matrix": result.matrix.name,
            "inventory": result.inventory.file if result.inventory else None,
            "filters": result.filters.describe(),
        },
        "summary": {
            "packets": t.packets,
            "flows": t.flow_count,
            "verdicts": result.verdict_counts(),
            "findings": result.severity_counts(),
            "known_findings": result.known,
            "time_window": window,
        },
        "findings": [f.to_dict() for f in result.findings],
        "coverage": [c.to_dict() for c in result.coverage],
        "decode": decode_document(t.counts),
        "capture_health": {
            "tcp_flows": t.tcp_flows,
            "tcp_one_way": t.tcp_one_way,
            "drops": t.drops,
            "weakened": t.weakened,
        },
        "notices": result.notices,
    }
