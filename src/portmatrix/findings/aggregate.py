"""The numbers of each problem, from its flows: counts, outcomes, times, distinct
hosts, the busiest host pairs, ports as ranges, example frames. One sort of the
flagged flows by problem, reductions over the runs, and `.tolist()` once per
column: the Python work grows with problems, never with flows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from portmatrix.decode.keyhash import mix
from portmatrix.findings.columns import first_k, port_ranges, unique
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
    order: np.ndarray | None = None  # the flagged flows' positions, problem by problem
    starts: np.ndarray | None = None  # where each problem starts in `order`


def aggregate(
    flows: Flows,
    rows: np.ndarray,
    gid: np.ndarray,
    groups: int,
    port: np.ndarray,
    answered: np.ndarray,
    several_files: bool,
) -> Groups:
    """`rows`: the flagged flows, in flow order (that is, by first packet); `gid`: each
    one's problem; `port`: the matrix port of every flow; `answered`: per flagged
    flow."""
    f = flows
    order = np.argsort(gid, kind="stable")  # problem by problem, in time within each
    s, g = rows[order], gid[order]
    answered = answered[order]
    starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    sizes = np.diff(np.r_[starts, len(g)])
    pairs = _Pairs(f, s, g, groups)
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
        initiators=pairs.count["init"].tolist(),
        responders=pairs.count["resp"].tolist(),
        initiator_hosts=pairs.hosts["init"],
        responder_hosts=pairs.hosts["resp"],
        pairs=pairs.top(),
        frames=_frames(f, s, starts, sizes, several_files),
        community=_community(f, s, starts, sizes),
        ports=port_ranges(g, proto, ports, groups),
        answered_ports=port_ranges(g[answered], proto[answered], ports[answered], groups),
        order=order,
        starts=starts,
    )


class _Pairs:
    """The distinct (initiator, responder) pairs of each problem, from one sort of
    the flows; hosts counted and named from the pairs (far fewer than flows)."""

    def __init__(self, f, s, g, groups: int) -> None:
        self.f, self.s, self.groups = f, s, groups
        ih = mix(f["init_hi"][s], f["init_lo"][s])
        rh = mix(f["resp_hi"][s], f["resp_lo"][s])
        first, _, self.flows = unique(mix(g.astype(np.uint64), ih, rh))
        self.first, self.g = first, g[first]  # a row of each pair, and its problem
        self.count, self.hosts = {}, {}
        for side, h in (("init", ih), ("resp", rh)):
            one, _, _ = unique(mix(self.g.astype(np.uint64), h[first]))
            count = np.bincount(self.g[one], minlength=groups)
            self.count[side] = count
            self.hosts[side] = self._named(first[one], self.g[one], count, side)

    def _named(self, at, owner, count, side: str) -> list[list[str]]:
        """The hosts of each problem that has at most NAMED_HOSTS of them, in order."""
        out: list[list[str]] = [[] for _ in range(self.groups)]
        small = count[owner] <= NAMED_HOSTS
        rows = self.s[at[small]]
        texts = address_texts(self.f[f"{side}_hi"][rows], self.f[f"{side}_lo"][rows])
        for gi, text in zip(owner[small].tolist(), texts, strict=True):
            out[gi].append(text)
        for hosts in out:
            hosts.sort(key=_address_order)
        return out

    def top(self) -> list[list[dict]]:
        """The TOP_PAIRS busiest pairs of each problem (ties: by addresses)."""
        order = np.lexsort((-self.flows, self.g))
        top = order[first_k(self.g[order], TOP_PAIRS)]
        at = self.s[self.first[top]]
        f = self.f
        inits = address_texts(f["init_hi"][at], f["init_lo"][at])
        resps = address_texts(f["resp_hi"][at], f["resp_lo"][at])
        out: list[list[dict]] = [[] for _ in range(self.groups)]
        for gi, a, b, c in zip(
            self.g[top].tolist(), inits, resps, self.flows[top].tolist(), strict=True
        ):
            out[gi].append({"initiator": a, "responder": b, "flows": c})
        for pairs in out:
            pairs.sort(
                key=lambda p: (
                    -p["flows"],
                    _address_order(p["initiator"]),
                    _address_order(p["responder"]),
                )
            )
        return out


def _address_order(text: str) -> tuple[int, int]:
    from ipaddress import ip_address

    a = ip_address(text)
    return a.version, int(a)


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
