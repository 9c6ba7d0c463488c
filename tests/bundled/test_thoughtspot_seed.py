"""The bundled ThoughtSpot matrix covers every row of the vendor's network ports document.

The document (`shared/seed/network-ports.txt`, in the `shared/` directory beside the
repository) is parsed here on its own, independently of the matrix, so the matrix cannot
drift from the vendor's tables unnoticed. A rule's `ref` cites the table by its title and
the 1-based data row(s) within it: "<title>, row N" or "<title>, rows N, M"; a rule that
merges rows of two tables joins two such parts with "; ".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import pytest

from portmatrix.policy.matrix import Rule, load_matrix
from support.paths import SEED

TITLES = (
    "Required ports for operations and debugging",
    "Required ports for intracluster operation",
    "Required ports for inbound and outbound cluster access",
    "Required ports for IPMI",
)

# Data rows per table, counted by hand when the matrix was written. Pinned so that a parser
# slip, or a new version of the document, fails here instead of silently checking less.
EXPECTED_ROWS = {TITLES[0]: 8, TITLES[1]: 79, TITLES[2]: 11, TITLES[3]: 3}

# The vendor's "Protocol" column: service names, all TCP except these.
UDP_NAMES = {"UDP"}
TCP_NAMES = {"TCP", "RPC", "HTTP", "HTTPS", "SSH", "SCP", "SMTP", "Postgres", "ODBC", "Mem-cached"}

_RANGE_ROW = re.compile(r"(\d+)\s*-\s*(\d+)\s+(\S+)")  # "20123 - 32768 TCP ..."
_EITHER_ROW = re.compile(r"(\d+) or (\d+)\s+(\S+)")  # "25 or 587 SMTP ..."
_SINGLE_ROW = re.compile(r"(\d+)\s+(\S+)")  # "22 SSH ..."
_ICMP_ROW = re.compile(r"\s+ICMPv4\b")  # the port column is empty (a no-break space)
_REF_PART = re.compile(r"(?P<title>.+?), rows? (?P<rows>\d+(?:, \d+)*)")


@dataclass
class Row:
    table: str
    number: int  # 1-based within its table, straight across a repeated header line
    proto: str  # tcp | udp | icmp
    ports: tuple[tuple[int, int], ...]  # inclusive ranges; () for ICMP
    text: str  # the row's line, with its continuation lines

    def __str__(self) -> str:
        return f"{self.table}, row {self.number}: {self.text[:70]!r}"


def _start_row(line: str) -> tuple[str, tuple[tuple[int, int], ...]] | None:
    """(protocol, ports) if `line` starts a data row, else None."""
    if _ICMP_ROW.match(line):
        return "icmp", ()
    if m := _RANGE_ROW.match(line):
        return _proto(m[3], line), ((int(m[1]), int(m[2])),)
    if m := _EITHER_ROW.match(line):
        return _proto(m[3], line), ((int(m[1]), int(m[1])), (int(m[2]), int(m[2])))
    if m := _SINGLE_ROW.match(line):
        return _proto(m[2], line), ((int(m[1]), int(m[1])),)
    return None


def _proto(name: str, line: str) -> str:
    if name in UDP_NAMES:
        return "udp"
    if name in TCP_NAMES:
        return "tcp"
    raise AssertionError(f"unknown protocol {name!r} in {line!r}: add it to TCP_NAMES or UDP_NAMES")


def parse_document(text: str) -> list[Row]:
    """The data rows of every "Required ports for ..." table.

    A table starts after a line beginning with "Port Protocol" and ends at a blank line; a
    second header line inside it continues the same table. A line inside a table that does
    not start a row (the S3 hostnames, the description after them) continues the last row.
    """
    rows: list[Row] = []
    title = ""
    in_table = False
    for line in text.splitlines():
        if line.startswith("Required ports for"):
            title = re.sub(r"\s*\(.*\)\s*$", "", line.strip())  # "IPMI (Intelligent ...)"
            in_table = False
        elif line.startswith("Port Protocol"):
            assert title, f"a table header before any table title: {line!r}"
            in_table = True
        elif not line.strip():
            in_table = False
        elif in_table:
            started = _start_row(line)
            if started is not None:
                number = sum(r.table == title for r in rows) + 1
                rows.append(Row(title, number, started[0], started[1], line.strip()))
            else:
                assert rows and rows[-1].table == title, f"continuation line with no row: {line!r}"
                rows[-1].text += " " + line.strip()
    return rows


def cited_rows(rule: Rule) -> set[tuple[str, int]]:
    """(table title, row number) pairs a rule's `ref` cites; fails on a malformed ref."""
    cited = set()
    for part in rule.ref.split(";"):
        m = _REF_PART.fullmatch(part.strip())
        assert m, (
            f"rule {rule.id}: ref part {part.strip()!r} is not '<table title>, row N' "
            f"or '<table title>, rows N, M'"
        )
        cited |= {(m["title"], int(n)) for n in m["rows"].split(", ")}
    return cited


def _covers(ranges: list[tuple[int, int]], lo: int, hi: int) -> bool:
    """Whether the union of inclusive `ranges` contains every port from `lo` to `hi`."""
    need = lo
    for start, end in sorted(ranges):
        if start > need:
            break
        need = max(need, end + 1)
        if need > hi:
            return True
    return False


def _covered(row: Row, rules: list[Rule]) -> bool:
    """Whether `rules` (of the row's protocol) together allow every port of the row."""
    same = [r for r in rules if r.proto == row.proto]
    if row.proto == "icmp":
        return bool(same)
    ranges = [span for r in same for span in r.ports]
    return all(_covers(ranges, lo, hi) for lo, hi in row.ports)


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    if not SEED.is_file():
        if "CI" in os.environ:
            pytest.fail(f"vendor document {SEED} is missing; CI runs with shared/ beside the repo")
        pytest.skip(f"vendor document {SEED} not found: shared/ is not beside this checkout")
    return parse_document(SEED.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def rules() -> list[Rule]:
    return load_matrix(["thoughtspot"]).rules


def test_document_parses_into_the_four_tables(rows: list[Row]) -> None:
    counts = {title: sum(r.table == title for r in rows) for title in {r.table for r in rows}}
    assert counts == EXPECTED_ROWS
    by_key = {(r.table, r.number): r for r in rows}
    access = "Required ports for inbound and outbound cluster access"
    # The quirks the parser must get right.
    assert by_key[(access, 9)].text.count("amazonaws.com") == 4  # hostname continuation lines
    assert "InfluxCloud" in by_key[(access, 9)].text
    assert by_key[(access, 10)].ports == ((25, 25), (587, 587))  # "25 or 587"
    assert by_key[(access, 7)].text.startswith("443 TCP HTTPS outbound")  # after 2nd header
    intracluster = "Required ports for intracluster operation"
    assert by_key[(intracluster, 72)].ports == ((20123, 32768),)
    assert by_key[(intracluster, 79)].proto == "icmp"
    assert by_key[(access, 6)].proto == "udp"  # NTP


def test_every_ref_names_a_table(rules: list[Rule]) -> None:
    for rule in rules:
        for title, _ in cited_rows(rule):
            assert title in TITLES, f"rule {rule.id}: ref names unknown table {title!r}"


def test_every_cited_row_exists(rows: list[Row], rules: list[Rule]) -> None:
    existing = {(r.table, r.number) for r in rows}
    for rule in rules:
        missing = sorted(cited_rows(rule) - existing)
        assert not missing, f"rule {rule.id} cites rows the document does not have: {missing}"


def test_every_port_of_every_table_is_covered(rows: list[Row], rules: list[Rule]) -> None:
    """Each (port, table) pair: a rule citing that table allows the port with that protocol."""
    uncovered = []
    for row in rows:
        citing = [rule for rule in rules if any(t == row.table for t, _ in cited_rows(rule))]
        if not _covered(row, citing):
            uncovered.append(str(row))
    assert not uncovered, "not allowed by any rule citing the table:\n" + "\n".join(uncovered)


def test_every_row_is_cited_by_rules_covering_it(rows: list[Row], rules: list[Rule]) -> None:
    """Each row is a rule or explicitly merged into one: the rules citing it allow its ports."""
    uncovered = []
    for row in rows:
        citing = [rule for rule in rules if (row.table, row.number) in cited_rows(rule)]
        if not _covered(row, citing):
            uncovered.append(str(row))
    assert not uncovered, "not covered by the rules that cite the row:\n" + "\n".join(uncovered)


def test_no_two_rules_allow_the_same_traffic(rules: list[Rule]) -> None:
    """A port listed twice (4243) or with two meanings (3181, 4181, 4853) is in one rule only.

    Otherwise a flow could be counted for either rule and coverage would depend on order.
    """
    for i, a in enumerate(rules):
        for b in rules[i + 1 :]:
            if (a.proto, a.from_role, a.to_role) != (b.proto, b.from_role, b.to_role):
                continue
            overlap = [
                (max(alo, blo), min(ahi, bhi))
                for alo, ahi in a.ports
                for blo, bhi in b.ports
                if alo <= bhi and blo <= ahi
            ]
            assert not overlap and a.proto != "icmp", f"rules {a.id} and {b.id} overlap: {overlap}"
