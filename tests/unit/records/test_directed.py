"""One-direction records joined into flows: windows joined, both observers of a
connection kept once, the order of records and of files irrelevant, and the
initiator and outcome each source can express."""

from __future__ import annotations

import ipaddress
import random
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portmatrix.addresses import to_int, to_text
from portmatrix.flows.model import BY_RECORD, BY_SYN, INITIATOR_BY, OUTCOMES
from portmatrix.records.directed import GAP, NS, concat, directed, join, reduce

T0 = 1_709_287_200  # 2024-03-01T10:00:00Z
SYN, ACK, RST, FIN = 2, 16, 4, 1


def rec(src, dst, sport, dport, proto=6, t=0, end=None, pkts=1, observer=1, **kw):
    """One directed record; times in seconds after T0."""
    s, d = to_int(ipaddress.ip_address(src)), to_int(ipaddress.ip_address(dst))
    return {
        "proto": proto,
        "src_hi": s >> 64,
        "src_lo": s & (2**64 - 1),
        "dst_hi": d >> 64,
        "dst_lo": d & (2**64 - 1),
        "sport": sport,
        "dport": dport,
        "first": (T0 + t) * NS,
        "last": (T0 + (t if end is None else end)) * NS,
        "pkts": pkts,
        "bytes": pkts * 100,
        "observer": observer,
        **kw,
    }


def records(rows: list[dict]) -> dict:
    """Directed records from rows; a row without `acc_pkts` had none dropped."""
    rows = [{"acc_pkts": r["pkts"], **r} for r in rows]
    names = {k for r in rows for k in r}
    defaults = {"icmp": -1, "records": 1}
    return directed({k: np.array([r.get(k, defaults.get(k, 0)) for r in rows]) for k in names})


def flows_of(rows: list[dict]) -> list[dict]:
    flows = join(reduce(records(rows)))
    out = []
    for i in range(len(flows)):
        f = {k: int(v[i]) for k, v in flows.cols.items()}
        out.append(
            {
                "init": to_text((f["init_hi"] << 64) | f["init_lo"]),
                "resp": to_text((f["resp_hi"] << 64) | f["resp_lo"]),
                "ports": (f["init_port"], f["resp_port"]),
                "pkts": (f["pkts_fwd"], f["pkts_rev"]),
                "outcome": OUTCOMES[f["outcome"]],
                "by": INITIATOR_BY[f["initiator_by"]],
                "first": f["first_ts"] // NS - T0,
                "last": f["last_ts"] // NS - T0,
                "records": f["records"],
            }
        )
    return out


def one(rows: list[dict]) -> dict:
    (flow,) = flows_of(rows)
    return flow


A, B = "10.0.0.1", "10.0.0.2"


def test_aws_handshake_both_enis_and_windows():
    """A connection logged at both ENIs (four records a window) over three one-minute
    windows: one flow, packets counted once, the SYN side is the initiator."""
    rows = []
    for w in range(3):
        for eni in (1, 2):
            fwd = SYN if w == 0 else FIN if w == 2 else 0
            rev = SYN | ACK if w == 0 else FIN if w == 2 else 0
            rows.append(
                rec(
                    A,
                    B,
                    40000,
                    22,
                    t=60 * w,
                    end=60 * w + 50,
                    pkts=5,
                    observer=eni,
                    flags=fwd,
                    flags_known=True,
                    opened=BY_SYN + 1 if w == 0 else 0,
                )
            )
            rows.append(
                rec(
                    B,
                    A,
                    22,
                    40000,
                    t=60 * w,
                    end=60 * w + 50,
                    pkts=4,
                    observer=eni,
                    flags=rev,
                    flags_known=True,
                    synack=w == 0,
                )
            )
    random.Random(1).shuffle(rows)
    flow = one(rows)
    assert (flow["init"], flow["resp"], flow["ports"]) == (A, B, (40000, 22))
    assert flow["pkts"] == (15, 12) and flow["records"] == 12
    assert (flow["outcome"], flow["by"], flow["first"], flow["last"]) == (
        "established",
        "syn",
        0,
        170,
    )


def test_a_long_silence_is_a_new_flow():
    rows = [rec(A, B, 40000, 22, t=0, end=10), rec(A, B, 40000, 22, t=10 + GAP + 2)]
    assert len(flows_of(rows)) == 2
    rows = [rec(A, B, 40000, 22, t=0, end=10), rec(A, B, 40000, 22, t=10 + GAP)]
    assert len(flows_of(rows)) == 1


@pytest.mark.parametrize(
    ("fwd", "rev", "rev_pkts", "outcome"),
    [
        (SYN, SYN | ACK, 1, "established"),
        (SYN, RST, 1, "refused"),  # AWS reports a RST-ACK as RST (ACK only with SYN)
        (SYN, RST | ACK, 1, "refused"),  # NetFlow
        (SYN, 0, 0, "unanswered"),
        (0, 0, 3, "midstream"),  # no SYN anywhere: the start was not logged
    ],
)
def test_tcp_outcomes_from_flags(fwd, rev, rev_pkts, outcome):
    rows = [rec(A, B, 40000, 443, flags=fwd, flags_known=True)]
    if rev_pkts:
        rows.append(rec(B, A, 443, 40000, t=0, pkts=rev_pkts, flags=rev, flags_known=True))
    assert one(rows)["outcome"] == outcome


def test_netflow_syn_on_both_sides_the_earlier_opened():
    """NetFlow ORs ACK into every direction: both sides show S and A; the earlier
    record (millisecond times) opened, a tie is a guess from the ports."""
    syn_ack = SYN | ACK
    fwd = rec(B, A, 40000, 443, flags=syn_ack, flags_known=True)
    rev = rec(A, B, 443, 40000, flags=syn_ack, flags_known=True)
    rev["first"] += 1_000_000  # one millisecond later
    flow = one([fwd, rev])
    assert (flow["init"], flow["by"], flow["outcome"]) == (B, "syn", "established")
    rev["first"] -= 1_000_000
    flow = one([fwd, rev])
    assert (flow["init"], flow["by"], flow["outcome"]) == (B, "port", "established")


def test_a_syn_ack_whose_syn_was_missed():
    """The exporter missed the SYN: one side shows S and A, the other only A."""
    rows = [
        rec(B, A, 443, 40000, flags=SYN | ACK, flags_known=True),
        rec(A, B, 40000, 443, flags=ACK, flags_known=True, pkts=3),
    ]
    flow = one(rows)
    assert (flow["init"], flow["by"], flow["outcome"]) == (A, "syn-ack", "established")


def test_one_way_netflow_that_acknowledged_is_established():
    flow = one([rec(A, B, 40000, 443, flags=SYN | ACK, flags_known=True, pkts=5)])
    assert (flow["init"], flow["outcome"], flow["pkts"]) == (A, "established", (5, 0))


def test_rejected_is_blocked_unless_an_answer_got_through():
    syn = {"flags": SYN, "flags_known": True, "opened": BY_SYN + 1}
    blocked = one([rec(A, B, 40000, 22, pkts=3, rejected=True, acc_pkts=0, **syn)])
    assert blocked["outcome"] == "blocked" and blocked["init"] == A
    # Accepted at A's ENI, rejected at B's: still blocked (nothing came back).
    both = [
        rec(A, B, 40000, 22, pkts=3, observer=1, **syn),
        rec(A, B, 40000, 22, pkts=3, observer=2, rejected=True, acc_pkts=0, **syn),
    ]
    assert one(both)["outcome"] == "blocked" and one(both)["pkts"] == (3, 0)
    # A stateless ACL dropping the answer: blocked too.
    answer_dropped = [
        rec(A, B, 40000, 22, **syn),
        rec(
            B,
            A,
            22,
            40000,
            flags=SYN | ACK,
            flags_known=True,
            synack=True,
            rejected=True,
            acc_pkts=0,
        ),
    ]
    assert one(answer_dropped)["outcome"] == "blocked"
    # A late packet rejected after a connection that worked: established.
    late = [
        *answer_dropped[:1],
        rec(B, A, 22, 40000, flags=SYN | ACK, flags_known=True, synack=True, pkts=4),
    ]
    late.append(rec(A, B, 40000, 22, t=30, rejected=True, acc_pkts=0, flags=FIN, flags_known=True))
    assert one(late)["outcome"] == "established"


def test_without_flags_ports_decide_and_a_lone_answered_packet_was_refused():
    """AWS without tcp-flags, Azure: a handshake takes the initiator two packets."""
    refused = one([rec(B, A, 22, 40000), rec(A, B, 40000, 22)])
    assert (refused["init"], refused["by"], refused["outcome"]) == (A, "port", "refused")
    answered = one([rec(B, A, 22, 40000, pkts=3), rec(A, B, 40000, 22, pkts=4)])
    assert answered["outcome"] == "established"
    assert one([rec(A, B, 40000, 22, pkts=2)])["outcome"] == "unanswered"


def test_a_source_that_names_the_initiator_wins():
    """Azure's tuple source initiated, even towards a high port from a low one."""
    rows = [
        rec(A, B, 80, 50000, pkts=4, opened=BY_RECORD + 1),
        rec(B, A, 50000, 80, pkts=3, records=0),
    ]
    flow = one(rows)
    assert (flow["init"], flow["ports"], flow["by"], flow["records"]) == (
        A,
        (80, 50000),
        "record",
        1,
    )
    # A tuple with no counters (Azure's B, begin): the outcome is not said.
    assert one([rec(A, B, 40000, 22, pkts=0, opened=BY_RECORD + 1)])["outcome"] == "midstream"


def test_sampled_records_are_guesses_and_silence_proves_nothing():
    flow = one([rec(A, B, 40000, 443, sampled=True)])
    assert (flow["by"], flow["outcome"]) == ("port", "midstream")


def test_icmp_query_and_reply():
    rows = [
        rec(B, A, 0, 0, proto=1, icmp=0),  # the reply
        rec(A, B, 0, 0, proto=1, icmp=8),
    ]
    flow = one(rows)
    assert (flow["init"], flow["by"], flow["outcome"]) == (A, "request", "established")
    # Types not given (AWS): the first in time, a tie a guess.
    late = rec(B, A, 0, 0, proto=1, t=1)
    assert one([rec(A, B, 0, 0, proto=1), late])["by"] == "first-packet"
    assert one([rec(A, B, 0, 0, proto=1), rec(B, A, 0, 0, proto=1)])["by"] == "port"


# The engine against a slow, obvious reference ----------------------------------------

HOSTS = ("10.0.0.1", "10.0.0.2", "fd00::3")


def slow_join(rows: list[dict]) -> list[tuple]:
    """Per flow (canonical key, first, last, packets each way, records): group by
    connection, cut where a record starts more than GAP after all before it ended,
    sum each observer's packets per direction and keep the largest observer."""
    by_key = defaultdict(list)
    for r in rows:
        a = (r["src"], r["sport"])
        b = (r["dst"], r["dport"])
        lo, hi = sorted([a, b], key=lambda e: (to_int(ipaddress.ip_address(e[0])), e[1]))
        by_key[(r["proto"], lo, hi)].append((r, 0 if a == lo else 1))
    out = []
    for key, members in by_key.items():
        members.sort(key=lambda m: m[0]["t"])
        flows, end = [], None
        for r, side in members:
            if end is None or r["t"] > end + GAP:
                flows.append([])
                end = r["end"] + 1
            flows[-1].append((r, side))
            end = max(end, r["end"] + 1)
        for flow in flows:
            sums = defaultdict(int)
            for r, side in flow:
                sums[(side, r["observer"])] += r["pkts"]
            pkts = tuple(
                max([n for (s, _), n in sums.items() if s == side] or [0]) for side in (0, 1)
            )
            first = min(r["t"] for r, _ in flow)
            last = max(r["end"] for r, _ in flow)
            out.append((key, first, last, pkts, len(flow)))
    return sorted(out)


def fast_join(rows: list[dict], parts: int = 1) -> list[tuple]:
    """The engine, on the rows cut into `parts` reduced separately (as files are)."""
    if not rows:
        return []
    cut = [rows[i::parts] for i in range(parts)]
    reduced = [
        reduce(
            records(
                [
                    rec(
                        r["src"],
                        r["dst"],
                        r["sport"],
                        r["dport"],
                        proto=r["proto"],
                        t=r["t"],
                        end=r["end"],
                        pkts=r["pkts"],
                        observer=r["observer"],
                    )
                    for r in part
                ]
            )
        )
        for part in cut
        if part
    ]
    flows = join(reduce(concat(reduced)))
    out = []
    for i in range(len(flows)):
        f = {k: int(v[i]) for k, v in flows.cols.items()}
        ends = sorted(
            [
                (to_text((f["init_hi"] << 64) | f["init_lo"]), f["init_port"], f["pkts_fwd"]),
                (to_text((f["resp_hi"] << 64) | f["resp_lo"]), f["resp_port"], f["pkts_rev"]),
            ],
            key=lambda e: (to_int(ipaddress.ip_address(e[0])), e[1]),
        )
        key = (f["proto"], ends[0][:2], ends[1][:2])
        out.append(
            (
                key,
                f["first_ts"] // NS - T0,
                f["last_ts"] // NS - T0,
                (ends[0][2], ends[1][2]),
                f["records"],
            )
        )
    return sorted(out)


record_rows = st.lists(
    st.fixed_dictionaries(
        {
            "src": st.sampled_from(HOSTS[:2]),
            "dst": st.sampled_from(HOSTS),
            "sport": st.sampled_from((22, 40000)),
            "dport": st.sampled_from((22, 40000)),
            "proto": st.sampled_from((6, 17)),
            "t": st.integers(0, 3 * GAP),
            "len": st.integers(0, 90),
            "pkts": st.integers(0, 9),
            "observer": st.integers(1, 3),
        }
    ).map(lambda r: {**r, "end": r["t"] + r.pop("len")}),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(rows=record_rows, parts=st.integers(1, 4), seed=st.integers(0, 99))
def test_engine_equals_the_slow_reference_in_any_order_and_any_grouping(rows, parts, seed):
    rows = [r for r in rows if (r["src"], r["sport"]) != (r["dst"], r["dport"])]
    expected = slow_join(rows)
    random.Random(seed).shuffle(rows)
    assert fast_join(rows, parts) == expected


def test_reduce_is_idempotent_and_keeps_every_record():
    rows = [rec(A, B, 40000, 22, t=t, pkts=2, observer=t % 2) for t in range(0, 3000, 30)]
    once = reduce(records(rows))
    twice = reduce(once)
    assert all(np.array_equal(once[k], twice[k]) for k in once)
    assert once["records"].sum() == len(rows) and once["pkts"].sum() == 2 * len(rows)
