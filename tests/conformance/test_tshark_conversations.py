"""Our flows against an independent oracle: tshark's conversation table.

For every capture under ../shared/pcaps/ and in captures/, the TCP and UDP
conversations (protocol and endpoint pair) and their packet counts equal what
`tshark -q -z conv,tcp -z conv,udp` reports. Where the two legitimately
differ, DIFFERENCES names the file and the reason, and the test checks exactly
that difference instead. Frame totals are also checked against MANIFEST.tsv.

tshark is a test-time dependency: without it these tests are skipped with a
reason, except in CI (the CI environment variable set), where they fail.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from portmatrix.errors import CaptureError
from portmatrix.report.flow_rows import flow_columns, rows
from portmatrix.sources.capture import Capture
from support.paths import REPO
from support.paths import SHARED_PCAPS as SHARED
from support.tshark import (
    diff,
    our_conversations,
    parse_conversations,
    traffic_of,
    tshark,
    tshark_conversations,
)

LOCAL = REPO / "captures"
PATTERNS = ("*.pcap", "*.pcapng", "*.pcap.gz", "*.pcapng.gz", "*.cap")

# Captures that neither we nor tshark can read.
UNREADABLE = {
    "libpcap__pcap-invalid-version-1.pcap": "pcap header with major version 1",
}

# Where our table and tshark's legitimately differ, and why.
DIFFERENCES = {
    "zeek__truncated-header.pcap": (
        "tshark leaves frame 1 out of the TCP conversation: a SYN whose TCP options "
        "are cut by the snaplen, which it marks malformed. We count it (its ports and "
        "flags were captured): 24 packets against tshark's 23."
    ),
}


# Captures whose counts equal tshark's only because of a decision of ours
# (docs/decoding.md, "Where our conversation counts differ from tshark's"): each
# is named with its decision, and the decision itself is checked below.
DECISIONS = {
    "zeek__icmp-destunreach-udp.pcap": (
        "A lone ICMP port unreachable whose datagram was not captured makes a UDP "
        "flow of its own, with no packets of its own and the outcome 'refused': a "
        "blocked attempt is what a port check reports. tshark lists no conversation; "
        "the comparison leaves out flows without packets of their own."
    ),
    "PcapPlusPlus__ip4_fragments.pcap": (
        "A fragmented datagram is one packet of its flow, with all its fragments' "
        "bytes, as tshark counts it once reassembled; a first fragment seen twice "
        "is not a second datagram."
    ),
    "zeek__gre-sample.pcap": (
        "A tunnel's inner and outer packets both make flows, as tshark lists both; "
        "the outer GRE flow is no TCP or UDP conversation."
    ),
}


def captures() -> list[Path]:
    found = set()
    for folder in (SHARED, LOCAL):
        for pattern in PATTERNS:
            found.update(folder.glob(pattern))
    return sorted(found, key=lambda p: (p.parent != SHARED, p.name))


READABLE = [p for p in captures() if p.name not in UNREADABLE]


def manifest() -> dict[str, dict]:
    path = SHARED / "MANIFEST.tsv"
    if not path.exists():
        return {}
    with path.open(encoding="utf-8", newline="") as fh:
        return {row["file"]: row for row in csv.DictReader(fh, delimiter="\t")}


# tshark's conversation table ---------------------------------------------------


def test_parser_reads_ipv6_units_and_port_reuse():
    text = "\n".join(
        [
            "TCP Conversations",
            "Filter:<No Filter>",
            "      |  <-  | |  ->  | | Total | Relative | Duration |",
            "      | Frames  Bytes | | Frames  Bytes | | Frames  Bytes |  Start  |  |",
            "2001:db8::1002:35023 <-> 2001:db8::1000:80  4 843 bytes  6 608 bytes  10 1451 bytes"
            "  4.99 0.0046",
            "10.0.0.1:40000 <-> 10.0.0.2:80  1 60 bytes  2 120 bytes  3 180 bytes  0.1 0.2",
            "10.0.0.1:40000 <-> 10.0.0.2:80  3 534 bytes  50 71 kB  53 71 kB  0.000 0.0020",
            "=" * 40,
            "UDP Conversations",
            "Filter:<No Filter>",
            "=" * 40,
        ]
    )
    assert parse_conversations(text) == {
        "tcp": {
            ("2001:db8::1000:80", "2001:db8::1002:35023"): [10],
            ("10.0.0.1:40000", "10.0.0.2:80"): [3, 53],
        },
        "udp": {},
    }


# Ours ------------------------------------------------------------------------------


# The tests -------------------------------------------------------------------------


def test_every_capture_is_covered():
    assert SHARED.is_dir(), f"{SHARED} is missing"
    names = {p.name for p in captures()}
    assert set(manifest()) <= names
    assert set(DIFFERENCES) <= names and set(UNREADABLE) <= names
    assert set(DECISIONS) <= names and not set(DECISIONS) & set(DIFFERENCES)


def test_at_least_95_percent_of_the_shared_captures_equal_tshark():
    shared = [p for p in READABLE if p.parent == SHARED]
    equal = [p for p in shared if not diff(our_conversations(p), tshark_conversations(p))]
    assert len(equal) >= 0.95 * len(shared), sorted({p.name for p in shared} - set(equal))
    assert {p.name for p in shared} - {p.name for p in equal} <= set(DIFFERENCES)


def test_no_shared_capture_tshark_reads_has_an_unsupported_link_type():
    unsupported = {p.name: traffic_of(p).counts.unsupported for p in READABLE}
    assert {name: u for name, u in unsupported.items() if u} == {}


@pytest.mark.parametrize("name", sorted(DECISIONS))
def test_each_decision_holds(name):
    path = SHARED / name
    traffic = traffic_of(path)
    flows = rows(flow_columns(traffic.flows))
    if name == "zeek__icmp-destunreach-udp.pcap":
        (flow,) = flows
        assert (flow["proto"], flow["packets_fwd"] + flow["packets_rev"]) == ("udp", 0)
        assert flow["outcome"] == "refused" and flow["icmp_error"]
        assert tshark_conversations(path) == {"tcp": {}, "udp": {}}
    elif name == "PcapPlusPlus__ip4_fragments.pcap":
        (flow,) = flows
        assert flow["packets_fwd"] + flow["packets_rev"] == 9  # datagrams, as tshark
        frames = sum(int(raw.wirelen.sum()) for raw in Capture(str(path)).batches())
        assert flow["bytes_fwd"] + flow["bytes_rev"] == frames  # every fragment's bytes
        assert traffic.fragments_unresolved == traffic.fragments_incomplete == 0
    elif name == "zeek__gre-sample.pcap":
        outer = [f for f in flows if f["proto"] == "47"]  # GRE, which has no name here
        inner = [f for f in flows if f["encap"] == "gre"]
        assert len(outer) == 1 and outer[0]["encap"] == ""
        assert {f["proto"] for f in inner} >= {"tcp", "udp"}
        pair = tuple(sorted((outer[0]["initiator"], outer[0]["responder"])))
        assert pair in tshark_conversations(path, ("ip",))["ip"]
    else:
        pytest.fail(f"{name}: DECISIONS names it but the test does not check it")


@pytest.mark.parametrize("path", READABLE, ids=lambda p: p.name)
def test_conversations_match_tshark(path):
    ours, theirs = our_conversations(path), tshark_conversations(path)
    if path.name not in DIFFERENCES:
        assert diff(ours, theirs) == {}
        return
    if path.name == "zeek__truncated-header.pcap":
        ((key, (ours_n, theirs_n)),) = diff(ours, theirs).items()
        assert key[0] == "tcp" and (ours_n, theirs_n) == ([24], [23])
        (flow,) = rows(flow_columns(traffic_of(path).flows))
        assert flow["frames"].split()[0] == "1"  # frame 1 is ours, not tshark's
    else:
        pytest.fail(f"{path.name}: DIFFERENCES names it but the test does not check it")


@pytest.mark.parametrize(
    "path", [p for p in READABLE if p.name in manifest()], ids=lambda p: p.name
)
def test_frames_and_conversation_counts_match_the_manifest(path):
    row = manifest()[path.name]
    traffic = traffic_of(path)
    traffic.counts.check()
    assert traffic.packets == int(row["packets"])
    ours = our_conversations(path)
    assert sum(len(v) for v in ours["tcp"].values()) == int(row["tcp_convs"])
    assert sum(len(v) for v in ours["udp"].values()) == int(row["udp_convs"])
    (info,) = traffic.captures
    if "cut short" in row["tshark_read_error"]:
        assert "cut short" in info.truncated
    else:
        assert info.truncated == ""


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_unreadable_captures_are_rejected_by_both(name):
    path = SHARED / name
    with pytest.raises(CaptureError) as err:
        Capture(str(path))
    assert err.value.file == str(path) and err.value.where
    done = subprocess.run(
        [tshark(), "-n", "-q", "-z", "conv,tcp", "-r", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "tshark:" in done.stderr


def test_conversation_totals_are_consistent_across_files():
    # Across all readable captures: packets in TCP/UDP flows never exceed the frames.
    totals = Counter()
    for path in READABLE:
        traffic = traffic_of(path)
        ours = our_conversations(path)
        totals["frames"] += traffic.packets
        totals["conv_packets"] += sum(sum(v) for t in ours.values() for v in t.values())
    assert 0 < totals["conv_packets"] <= totals["frames"]


def test_missing_tshark_skips_outside_ci_and_fails_in_ci(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="tshark is not installed"):
        tshark()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="tshark is not installed"):
        tshark()
