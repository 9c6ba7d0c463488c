"""tshark's conversation table as an oracle, and ours in the same shape: what
the conformance tests compare (tests/conformance)."""

from __future__ import annotations

import functools
import re
import subprocess
from collections import defaultdict
from pathlib import Path

from portmatrix.flows.from_captures import read_traffic
from portmatrix.report.flow_rows import flow_columns, rows
from support import tools


def tshark() -> str:
    """tshark's path; skipped without it, failed in CI (support/tools.py)."""
    return tools.program("tshark", "Debian/Ubuntu: apt-get install tshark")


_ROW = re.compile(r"^(?P<a>\S+)\s+<->\s+(?P<b>\S+)\s+(?P<rest>.*)$")
# Each "Frames Bytes" group: a frame count, then a byte count with its unit.
_GROUP = re.compile(r"(\d+)\s+\d+(?:\.\d+)?\s*(?:bytes|kB|MB|GB|TB)\b")
_SECTION = re.compile(r"^(TCP|UDP|IPv4|IPv6) Conversations")


def parse_conversations(text: str) -> dict:
    """{table: {(endpoint, endpoint) sorted: [total frames of each conversation]}} of
    tshark's `-z conv,...` output (tables tcp, udp, ip, ipv6)."""
    out: dict[str, dict] = {}
    section = None
    for line in text.splitlines():
        if m := _SECTION.match(line):
            section = {"TCP": "tcp", "UDP": "udp", "IPv4": "ip", "IPv6": "ipv6"}[m.group(1)]
            out.setdefault(section, defaultdict(list))
            continue
        m = _ROW.match(line)
        if not m or section is None:
            continue
        groups = [int(g) for g in _GROUP.findall(m.group("rest"))]
        assert len(groups) == 3, f"unexpected tshark row: {line!r}"
        back, forth, total = groups
        assert back + forth == total, line
        out[section][tuple(sorted((m.group("a"), m.group("b"))))].append(total)
    return {t: {k: sorted(v) for k, v in table.items()} for t, table in out.items()}


@functools.cache
def tshark_conversations(path: Path, tables: tuple[str, ...] = ("tcp", "udp")) -> dict:
    args = [tshark(), "-n", "-q", "-r", str(path)]
    for table in tables:
        args += ["-z", f"conv,{table}"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    # A file cut short mid-record: tshark says so and exits 2, after its tables.
    assert done.returncode == 0 or "cut short" in done.stderr, done.stderr
    found = parse_conversations(done.stdout)
    assert set(found) == set(tables), done.stdout
    return found


@functools.cache
def traffic_of(path: Path):
    return read_traffic([str(path)])


def our_conversations(path: Path) -> dict:
    """Same shape as tshark's: TCP and UDP flows with packets of their own (a flow
    made only of ICMP errors quoting it is no tshark conversation)."""
    out: dict[str, dict] = {"tcp": defaultdict(list), "udp": defaultdict(list)}
    for f in rows(flow_columns(traffic_of(path).flows)):
        packets = f["packets_fwd"] + f["packets_rev"]
        if f["proto"] not in out or packets == 0:
            continue
        key = tuple(
            sorted(
                (
                    f"{f['initiator']}:{f['initiator_port']}",
                    f"{f['responder']}:{f['responder_port']}",
                )
            )
        )
        out[f["proto"]][key].append(packets)
    return {t: {k: sorted(v) for k, v in table.items()} for t, table in out.items()}


def diff(ours: dict, theirs: dict) -> dict:
    """{(table, key): (ours, theirs)} where they differ."""
    out = {}
    for table in ("tcp", "udp"):
        for key in set(ours.get(table, {})) | set(theirs.get(table, {})):
            a, b = ours.get(table, {}).get(key), theirs.get(table, {}).get(key)
            if a != b:
                out[table, key] = (a, b)
    return out
