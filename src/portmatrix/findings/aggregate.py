"""The numbers of each problem, from its flows: counts, outcomes, times, distinct
hosts, the busiest host pairs, ports as ranges, example frames. One sort of the
flagged flows by problem, reductions over the runs, and `.tolist()` once per
column: the Python work grows with problems, never with flows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from portmatrix.findings.columns import dense, distinct_per, first_k, port_ranges
from portmatrix.findings.model import EXAMPLE_FRAMES, TOP_PAIRS
from portmatrix.flows.community import community_ids
from portmatrix.flows.model import OUTCOMES, Flows
from portmatrix.textforms import address_texts, iso

NAMED_HOSTS = 16  # hosts a Wireshark filter names on one side; more: the side is left open


@dataclass
class Groups:
    """Per problem (index g): its numbers, as plain Python values."""

    rep: list[int]  # a flow standing for the problem (index into the flows)
    members: list[np.ndarray]  # every flow of the problem
    flows: list[int]
    packets: list[int]
    bytes: list[int]
    first: list[str]
    last: list[str]
    outcomes: list[dict[str, int]]
    initiators: list[int]
    responders: list[int]
    initiator_hosts: list[list[str]]  # up to NAMED_HOSTS, when no more than that
    responder_hosts: list[list[str]]
    pairs: list[list[dict]]
    frames: list[list[str]]
    community: list[list[str]]
    ports: list[list[tuple[int, int, int]]]  # (proto, first, last); (0, -1, n): n more runs
    answered_ports: list[list[tuple[int, int, int]]]


def aggregate(
    flows: Flows,
    rows: np.ndarray,
    gid: np.ndarray,
    groups: int,
    port: np.ndarray,
    answered: np.ndarray,
    several_files: bool,
) -> Groups:
    """`rows`: the flagged flows; `gid`: each one's problem; `port`: the matrix port of
    every flow; `answered`: per flagged flow."""
    f = flows
    order = np.lexsort((rows, f["first_ts"][rows], gid))  # problem, then time
    s, g = rows[order], gid[order]
    answered = answered[order]
    starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    sizes = np.diff(np.r_[starts, len(g)])
    init_host = dense(f["init_hi"][s], f["init_lo"][s])[0]
    resp_host = dense(f["resp_hi"][s], f["resp_lo"][s])[0]
    n_init = distinct_per(g, init_host, groups)
    n_resp = distinct_per(g, resp_host, groups)
    outcome_counts = np.add.reduceat(
        np.eye(len(OUTCOMES), dtype=np.int64)[f["outcome"][s]], starts
    ).tolist()
    proto, ports = f["proto"][s], port[s]
    return Groups(
        rep=s[starts].tolist(),
        members=np.split(s, starts[1:]),
        flows=sizes.tolist(),
        packets=np.add.reduceat(f["pkts_fwd"][s] + f["pkts_rev"][s], starts).tolist(),
        bytes=np.add.reduceat(f["bytes_fwd"][s] + f["bytes_rev"][s], starts).tolist(),
        first=iso(np.minimum.reduceat(f["first_ts"][s], starts)).tolist(),
        last=iso(np.maximum.reduceat(f["last_ts"][s], starts)).tolist(),
        outcomes=[
            {o: c for o, c in zip(OUTCOMES, counts, strict=True) if c} for counts in outcome_counts
        ],
        initiators=n_init.tolist(),
        responders=n_resp.tolist(),
        initiator_hosts=_hosts(f, s, g, init_host, n_init, groups, "init"),
        responder_hosts=_hosts(f, s, g, resp_host, n_resp, groups, "resp"),
        pairs=_pairs(f, s, g, init_host, resp_host, groups),
        frames=_frames(f, s, starts, sizes, several_files),
        community=_community(f, s, starts, sizes),
        ports=port_ranges(g, proto, ports, groups),
        answered_ports=port_ranges(g[answered], proto[answered], ports[answered], groups),
    )


def _hosts(f, s, g, host, count, groups: int, side: str) -> list[list[str]]:
    """The hosts of each problem that has at most NAMED_HOSTS of them."""
    out: list[list[str]] = [[] for _ in range(groups)]
    small = (count <= NAMED_HOSTS)[g]
    _, _, first = dense(g[small], host[small])
    at = np.flatnonzero(small)[first]
    texts = address_texts(f[f"{side}_hi"][s[at]], f[f"{side}_lo"][s[at]])
    for gi, text in zip(g[at].tolist(), texts, strict=True):
        out[gi].append(text)
    for hosts in out:
        hosts.sort(key=_address_order)
    return out


def _address_order(text: str) -> tuple[int, int]:
    from ipaddress import ip_address

    a = ip_address(text)
    return a.version, int(a)


def _pairs(f, s, g, init_host, resp_host, groups: int) -> list[list[dict]]:
    """The TOP_PAIRS busiest (initiator, responder) pairs of each problem."""
    pid, n, first = dense(g, init_host, resp_host)  # first: one row per pair
    counts = np.bincount(pid, minlength=n)
    pg = g[first]
    order = np.lexsort((np.arange(n), -counts, pg))
    top = order[first_k(pg[order], TOP_PAIRS)]
    at = s[first[top]]
    inits = address_texts(f["init_hi"][at], f["init_lo"][at])
    resps = address_texts(f["resp_hi"][at], f["resp_lo"][at])
    out: list[list[dict]] = [[] for _ in range(groups)]
    for gi, a, b, c in zip(pg[top].tolist(), inits, resps, counts[top].tolist(), strict=True):
        out[gi].append({"initiator": a, "responder": b, "flows": c})
    return out


def _examples(starts, sizes) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the first EXAMPLE_FRAMES flows of each problem, and their problem."""
    k = np.minimum(sizes, EXAMPLE_FRAMES)
    owner = np.repeat(np.arange(len(starts)), k)
    pos = np.repeat(starts, k) + (np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k))
    return pos, owner


def _frames(f, s, starts, sizes, several_files: bool) -> list[list[str]]:
    pos, owner = _examples(starts, sizes)
    frame, file = f["frame0"][s[pos]], f["file0"][s[pos]]
    out: list[list[str]] = [[] for _ in range(len(starts))]
    for gi, fr, fi in zip(owner.tolist(), frame.tolist(), file.tolist(), strict=True):
        if fr >= 0:
            out[gi].append(f"{fi}:{fr}" if several_files else str(fr))
    return out


def _community(f, s, starts, sizes) -> list[list[str]]:
    pos, owner = _examples(starts, sizes)
    ids = community_ids(f.take(s[pos]))
    out: list[list[str]] = [[] for _ in range(len(starts))]
    for gi, cid in zip(owner.tolist(), ids, strict=True):
        if cid and cid not in out[gi]:
            out[gi].append(cid)
    return out
