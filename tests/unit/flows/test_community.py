"""Community ID v1: the spec's examples, and the reference implementation (the
`communityid` package) on random flows of every kind."""

from __future__ import annotations

import ipaddress

import communityid
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from portmatrix.flows.community import community_ids
from portmatrix.flows.model import Flows


def flows_of(rows) -> Flows:
    """rows: (proto, initiator, responder, init port, resp port, icmp type or -1)."""

    def halves(text):
        a = ipaddress.ip_address(text)
        value = int(a) | (0xFFFF << 32) if a.version == 4 else int(a)
        return value >> 64, value & ((1 << 64) - 1)

    cols = {k: [] for k in ("proto", "init_hi", "init_lo", "resp_hi", "resp_lo")}
    cols |= {"init_port": [], "resp_port": [], "icmp_req": []}
    for proto, a, b, sp, dp, req in rows:
        (ih, il), (rh, rl) = halves(a), halves(b)
        for k, v in zip(cols, (proto, ih, il, rh, rl, sp, dp, req), strict=True):
            cols[k].append(v)
    return Flows.from_columns(
        {
            k: np.array(v, dtype=np.uint64 if "_h" in k or "_l" in k else np.int64)
            for k, v in cols.items()
        }
    )


def test_the_spec_examples():
    assert community_ids(
        flows_of(
            [
                (6, "128.232.110.120", "66.35.250.204", 34855, 80, -1),
                (17, "8.8.8.8", "192.168.1.52", 53, 54585, -1),
                (1, "192.168.0.89", "192.168.0.1", 0, 0, 8),
            ]
        )
    ) == [
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
        "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
        "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
    ]


v4 = st.sampled_from(["10.0.0.1", "10.0.0.2", "192.0.2.9"])
v6 = st.sampled_from(["fd00::1", "fd00::2", "2001:db8::9"])
port = st.integers(0, 65535)


@st.composite
def flow(draw):
    six = draw(st.booleans())
    a, b = draw(v6 if six else v4), draw(v6 if six else v4)
    proto = draw(st.sampled_from([6, 17, 132, 1, 47]))
    if proto == 1:
        proto = 58 if six else 1
        kind = draw(st.sampled_from([128, 129, 135, 1] if six else [8, 0, 13, 3]))
        return (proto, a, b, 0, 0, kind)
    return (proto, a, b, draw(port), draw(port), -1)


@settings(max_examples=60)
@given(st.lists(flow(), min_size=1, max_size=30))
def test_the_reference_implementation_agrees(rows):
    ref = communityid.CommunityID()
    expected = []
    for proto, a, b, sp, dp, kind in rows:
        if proto in (6, 17, 132):
            t = communityid.FlowTuple(proto, a, b, sp, dp)
        elif proto in (1, 58):
            t = communityid.FlowTuple(proto, a, b, kind, 0)
        else:
            t = communityid.FlowTuple(proto, a, b)
        expected.append(ref.calc(t))
    assert community_ids(flows_of(rows)) == expected
