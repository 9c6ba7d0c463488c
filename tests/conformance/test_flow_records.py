"""Flow records judged like captures: the same traffic, as a capture and as each
source logs it, gives the same verdicts, outcomes, coverage and findings — on
everything that source can express (docs/flow-records.md, "What each source
cannot say", is the list; EXPRESSES below applies it to the capture's flows).

The cloud logs are built from our sample captures' flows (tests/support/
flowlogs.py: as AWS, Azure and GCP would have logged that traffic); the
NetFlow files are written by nfpcapd from the captures themselves and read
back through nfdump (both from the Debian package `nfdump`). Without nfdump
the NetFlow tests are skipped with a reason, except in CI, where they fail
(support/tools.py).
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest

from portmatrix.check import run_check
from portmatrix.policy.lookup import VERDICTS
from portmatrix.report.flow_rows import flow_columns, rows
from support import flowlogs as fl
from support import tools
from support.paths import CAPTURES, SHARED_PCAPS

SAMPLES = ("thoughtspot-demo", "violations-small", "midstream", "multi-link")
# one-way-span is a capture artifact (a span mirroring one side): a cloud logs
# both directions at the interface, so its flows would be unanswered there.


def sample(name: str) -> tuple[str, str]:
    path = next(CAPTURES.glob(f"{name}.pcap*"))
    return str(path), str(CAPTURES / f"{name}.inventory.yaml")


def judged(result) -> Counter:
    """(proto, initiator, responder, port, verdict, outcome) of every flow."""
    out = Counter()
    verdicts = result.classified.verdict
    for row, v in zip(rows(flow_columns(result.traffic.flows)), verdicts, strict=True):
        out[
            (
                row["proto"],
                row["initiator"],
                row["responder"],
                row["responder_port"],
                VERDICTS[v],
                row["outcome"],
            )
        ] += 1
    return out


def _unordered(t: tuple) -> tuple:
    proto, a, b, port, verdict, outcome = t
    return (proto, *sorted((a, b)), port, verdict, outcome)


def _icmp_refused(capture) -> set[tuple[str, str]]:
    """(initiator, responder) of the flows an ICMP error refused: no source ties the
    error to the flow, so they look unanswered and the error is an ICMP flow."""
    f = capture.traffic.flows
    cols = flow_columns(f)
    return {
        (cols["initiator"][i], cols["responder"][i])
        for i in range(len(f))
        if int(f["icmp_err_type"][i]) >= 0 and int(f["pkts_rev"][i]) == 0
    }


def _errors_only(capture) -> set[tuple[str, str, int]]:
    """Flows made only of an ICMP error (their own packet was not captured): no
    exporter has a record of them."""
    f = capture.traffic.flows
    cols = flow_columns(f)
    return {
        (cols["initiator"][i], cols["responder"][i], cols["responder_port"][i])
        for i in range(len(f))
        if int(f["pkts_fwd"][i]) + int(f["pkts_rev"][i]) == 0
    }


def expresses(source: str, capture) -> tuple[Counter, set]:
    """The capture's flows as `source` can say them, and the pairs whose ICMP
    errors it logs as flows of their own (left out of the comparison)."""
    refused = _icmp_refused(capture)
    errors_only = _errors_only(capture)
    ported = {"tcp", "udp", "sctp"}
    out = Counter()
    for (proto, init, resp, port, verdict, outcome), n in judged(capture).items():
        if (init, resp, port) in errors_only:
            continue
        by_icmp = (init, resp) in refused and outcome == "refused"
        if source == "gcp":  # sampled, no flags: one way proves nothing, a reset is an answer
            outcome = "midstream" if by_icmp or outcome == "unanswered" else "established"
        elif by_icmp:
            outcome = "unanswered"
        elif source in ("azure", "nsg") and outcome == "midstream":
            outcome = "established"  # Azure tracks connections: nothing is mid-stream to it
        if source == "nsg" and proto not in ported:
            continue  # NSG flow logs know TCP and UDP only
        t = (proto, init, resp, port, verdict, outcome)
        out[t] += n
    return out, refused


def compare(source: str, capture, logged) -> None:
    expected, refused = expresses(source, capture)
    got = judged(logged)
    # The ICMP flows that stand for the errors no source ties to their flow.
    errors = {(r, i) for i, r in refused}
    got = Counter(
        {
            t: n
            for t, n in got.items()
            if not (t[0] in ("icmp", "icmpv6") and (t[1], t[2]) in errors | refused)
        }
    )
    # Without ICMP types or with a tie in time, the direction of ICMP (and of UDP
    # between two equal ports) is the canonical order, not the first packet.
    loose = source in ("aws", "parquet", "gcp", "netflow")
    if loose:
        expected = Counter(_unordered(t) if _undirected(t) else t for t in expected.elements())
        got = Counter(_unordered(t) if _undirected(t) else t for t in got.elements())
    if source in ("netflow",):  # no echo identifier: the pings of a pair are one flow
        expected = Counter(set(expected.elements()))
        got = Counter(set(got.elements()))
    assert got == expected


def _undirected(t: tuple) -> bool:
    return t[0] in ("icmp", "icmpv6") or (t[0] == "udp" and t[3] in (123,))


def findings(result, leave_out: set) -> set[tuple]:
    return {
        (f.id, f.verdict, f.severity)
        for f in result.findings
        if (f.initiator, f.responder) not in leave_out and f.proto not in ("icmp", "icmpv6")
    }


WRITERS = {
    "aws": lambda d, recs: fl.write_aws(d / "flows.log.gz", recs),
    "parquet": lambda d, recs: fl.write_aws_parquet(d / "flows.parquet", recs),
    "azure": lambda d, recs: fl.write_azure(d / "vnet.json", recs),
    "nsg": lambda d, recs: fl.write_azure(d / "nsg.json", recs, vnet=False),
    "gcp": lambda d, recs: fl.write_gcp(d / "flows.json", recs),
}


@pytest.fixture(scope="module")
def captures():
    return {
        name: run_check([sample(name)[0]], ["thoughtspot"], sample(name)[1]) for name in SAMPLES
    }


@pytest.mark.parametrize("source", list(WRITERS))
@pytest.mark.parametrize("name", SAMPLES)
def test_cloud_logs_of_the_sample_captures_give_their_verdicts(tmp_path, captures, name, source):
    capture = captures[name]
    # Logged at two interfaces (both ends in the VPC): each counted once.
    recs = fl.logged(
        capture.traffic.flows, observers=("eni-0aaaaaaaaaaaaaaaa", "eni-0bbbbbbbbbbbbbbbb")
    )
    path = WRITERS[source](tmp_path, recs)
    logged = run_check([str(path)], ["thoughtspot"], sample(name)[1], records="auto")
    compare(source, capture, logged)
    # What they can say, they say as the capture (Azure names the initiators that a
    # capture without handshakes can only guess: their findings are errors there).
    if source in ("aws", "parquet") or (source == "azure" and name != "midstream"):
        refused = _icmp_refused(capture)
        leave_out = refused | {(r, i) for i, r in refused}
        assert findings(logged, leave_out) == findings(capture, leave_out)
        statuses = {c.rule: c.status for c in capture.coverage}
        assert {c.rule: c.status for c in logged.coverage} == statuses


def test_gcp_verdicts_rest_on_guesses(tmp_path, captures):
    """Sampled, no flags: findings say so (heuristic) and are never errors for
    traffic the capture proves got through; missing services are weakened."""
    capture = captures["violations-small"]
    path = fl.write_gcp(tmp_path / "f.json", fl.logged(capture.traffic.flows))
    logged = run_check([str(path)], ["thoughtspot"], sample("violations-small")[1], records="auto")
    assert {(f.id, f.verdict) for f in logged.findings} == {
        (f.id, f.verdict) for f in capture.findings
    }
    assert all(f.heuristic for f in logged.findings if f.kind == "flow")
    assert {f.severity for f in logged.findings} == {"warning"}
    assert logged.traffic.weakened


# NetFlow through nfpcapd and nfdump ----------------------------------------------------


def nfdump_tools() -> None:
    for name in ("nfpcapd", "nfdump"):
        tools.program(name, "Debian/Ubuntu: apt-get install nfdump; scripts/setup.sh does")


def netflow_of(capture: Path, out: Path) -> list[str]:
    """nfdump files written by nfpcapd from a capture."""
    nfdump_tools()
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["nfpcapd", "-r", str(capture), "-w", str(out)], capture_output=True, check=True)
    return sorted(str(p) for p in out.glob("nfcapd.*"))


# Shared captures nfpcapd reads, and where its NetFlow says less than the capture.
SHARED = {
    "PcapPlusPlus__4KHttpRequests.pcap": "",
    "PcapPlusPlus__DnsPackets.pcap": "",
    "PcapPlusPlus__ip4_fragments.pcap": "",
    "PcapPlusPlus__raw_ip.pcap": "",
    "PcapPlusPlus__tls.pcap": "",
    "chrissanders-packets__tcp_refuseconnection.pcapng": "",
    "markofu-pcaps__ftp-crack.pcap": "",
    "markofu-pcaps__http-fault-post.pcap": "",
    "tcpdump__tcp-handshake-nano.pcap": "",
    "zeek__NTP_sync.pcap": "",
    "zeek__http-qinq-0.pcap": "",
    "zeek__missing-syn.pcap": "",
    "zeek__mixed-vlan-mpls.pcap": "",
    "zeek__syn.pcap": "",
    "zeek__icmp-destunreach-udp.pcap": "the ICMP error is a flow of its own",
    "chrissanders-packets__http_ip4and6.pcapng": (
        "SYN and SYN-ACK in the same millisecond: the initiator is a guess from the ports"
    ),
}


@pytest.mark.parametrize("name", SAMPLES[:3])
def test_netflow_of_the_sample_captures_gives_their_verdicts(tmp_path, captures, name):
    files = netflow_of(Path(sample(name)[0]), tmp_path / "nf")
    logged = run_check(files, ["thoughtspot"], sample(name)[1], records="auto")
    compare("netflow", captures[name], logged)
    refused = _icmp_refused(captures[name])
    leave_out = refused | {(r, i) for i, r in refused}
    assert findings(logged, leave_out) == findings(captures[name], leave_out)


def test_netflow_of_a_one_way_span_is_established_and_one_way(tmp_path):
    files = netflow_of(Path(sample("one-way-span")[0]), tmp_path / "nf")
    capture = run_check([sample("one-way-span")[0]], ["thoughtspot"], sample("one-way-span")[1])
    logged = run_check(files, ["thoughtspot"], sample("one-way-span")[1], records="auto")
    assert judged(logged) == judged(capture)
    assert logged.traffic.mostly_one_way and logged.traffic.weakened


@pytest.mark.parametrize("name", sorted(SHARED))
def test_netflow_of_the_shared_captures(tmp_path, name):
    path = SHARED_PCAPS / name
    if not path.exists():
        pytest.skip(f"{path} is not here")
    files = netflow_of(path, tmp_path / "nf")
    capture = run_check([str(path)], ["thoughtspot"], None)
    logged = run_check(files, ["thoughtspot"], None, records="auto")
    expected, got = judged(capture), judged(logged)
    if "millisecond" in SHARED[name]:  # same verdicts and outcomes; by ports, not SYN
        assert got == expected
        assert {r["initiator_by"] for r in rows(flow_columns(logged.traffic.flows))} == {"port"}
        return
    compare("netflow", capture, logged)


def test_a_damaged_nfdump_file_says_so(tmp_path):
    files = netflow_of(Path(sample("thoughtspot-demo")[0]), tmp_path / "nf")
    cut = tmp_path / "cut" / "nfcapd.202403011000"
    cut.parent.mkdir()
    data = Path(files[0]).read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    traffic = run_check([str(cut)], ["thoughtspot"], None, records="auto").traffic
    assert traffic.captures[0].truncated.startswith("nfdump says:")
    assert any("nfdump says" in n for n in traffic.notices())
