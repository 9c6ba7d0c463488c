"""Flow findings: flows grouped into problems and graded on both axes of DESIGN.md.

Flow findings group flows that share verdict, initiator, responder and the
responder's port/proto. Severity:

- forbidden (wrong-direction, unexpected-source, unexpected-port) and answered
  by the responder: error — traffic the matrix forbids got through;
- forbidden and refused or unanswered: info — the network blocked it, as the
  matrix wants (still listed); but forbidden UDP with no reply at all is a
  warning: for UDP, silence does not show it was blocked;
- allowed but refused, or a TCP/ICMP attempt left unanswered: error when the
  rule is required, warning otherwise (UDP silence proves nothing);
- a finding that rests only on a guessed initiator (mid-stream capture) is at
  most a warning, and says so.

Coverage findings: a required rule with no answered flow is missing-required,
or required-unreachable when it only had failed attempts — warnings instead
of errors when the capture is one-way or dropped packets.

Ids are stable: built from verdict, roles, addresses, protocol and port (never
the client's ephemeral port), so runs can be compared and a baseline kept.
"""

from __future__ import annotations

import numpy as np

from portmatrix.findings.model import ERROR, EXAMPLE_FRAMES, INFO, WARNING, Finding
from portmatrix.findings.wording import FlowGroup, flow_finding
from portmatrix.flows.model import OUTCOMES, UNANSWERED, Flows
from portmatrix.policy.classify import ALLOWED, OUT_OF_SCOPE, Classified, matrix_port
from portmatrix.policy.lookup import VERDICTS, RuleIndex
from portmatrix.policy.roles import RoleMap, real_roles
from portmatrix.textforms import address_texts, iso, proto_name


def flow_findings(
    flows: Flows, cls: Classified, role_map: RoleMap, index: RuleIndex, several_files: bool
) -> list[Finding]:
    verdict = cls.verdict.astype(np.int64)
    forbidden = (verdict != ALLOWED) & (verdict != OUT_OF_SCOPE)
    blocked_allowed = (verdict == ALLOWED) & cls.failed
    chosen = np.flatnonzero(forbidden | blocked_allowed)
    if not len(chosen):
        return []
    # Forbidden UDP (or another protocol without handshake) that got no reply: the
    # silence does not show it was blocked, it may have got through. Undecided.
    silent = (flows["outcome"] == UNANSWERED) & ~cls.failed
    sev = _severities(cls, index, forbidden, blocked_allowed, silent)
    port = matrix_port(flows)
    cols = np.stack(
        [
            verdict,
            flows["init_hi"].astype(np.int64),
            flows["init_lo"].astype(np.int64),
            flows["resp_hi"].astype(np.int64),
            flows["resp_lo"].astype(np.int64),
            flows["proto"],
            port,
        ],
        axis=1,
    )[chosen]
    _, inverse = np.unique(cols, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    sub = chosen[order]  # flows, grouped finding by finding
    sizes = np.bincount(inverse)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    rep = sub[starts]  # one flow standing for its finding
    g = {
        "sev": np.maximum.reduceat(sev[sub], starts),
        "heuristic": np.logical_and.reduceat(cls.heuristic[sub], starts),
        "silent": np.logical_and.reduceat(silent[sub], starts),
        "packets": np.add.reduceat(flows["pkts_fwd"][sub] + flows["pkts_rev"][sub], starts),
        "bytes": np.add.reduceat(flows["bytes_fwd"][sub] + flows["bytes_rev"][sub], starts),
        "first": iso(np.minimum.reduceat(flows["first_ts"][sub], starts)),
        "last": iso(np.maximum.reduceat(flows["last_ts"][sub], starts)),
        "outcomes": np.add.reduceat(
            np.eye(len(OUTCOMES), dtype=np.int64)[flows["outcome"][sub]], starts
        ),
        "init": address_texts(flows["init_hi"][rep], flows["init_lo"][rep]),
        "resp": address_texts(flows["resp_hi"][rep], flows["resp_lo"][rep]),
    }
    frames = _example_frames(flows, sub, starts, sizes, several_files)
    roles_text: dict[int, list[str]] = {}

    def roles(set_id: int) -> list[str]:
        if set_id not in roles_text:
            roles_text[set_id] = sorted(real_roles(role_map.roles_of(set_id)))
        return roles_text[set_id]

    out = []
    for j, i in enumerate(rep.tolist()):
        outcomes = {
            o: int(c) for o, c in zip(OUTCOMES, g["outcomes"][j].tolist(), strict=True) if c
        }
        group = FlowGroup(
            decision=cls.decisions[int(cls.decision[i])],
            verdict=VERDICTS[int(cls.verdict[i])],
            proto=proto_name(int(flows["proto"][i])),
            port=int(port[i]),
            init=g["init"][j],
            resp=g["resp"][j],
            i_roles=roles(int(cls.init_roles[i])),
            r_roles=roles(int(cls.resp_roles[i])),
            severity=int(g["sev"][j]),
            heuristic=bool(g["heuristic"][j]),
            silent=bool(g["silent"][j]),
            members=sub[starts[j] : starts[j] + sizes[j]],
            outcomes=outcomes,
            flows=int(sizes[j]),
            packets=int(g["packets"][j]),
            nbytes=int(g["bytes"][j]),
            first=str(g["first"][j]),
            last=str(g["last"][j]),
            frames=frames[j],
        )
        out.append(flow_finding(group, index))
    return out


def _severities(cls: Classified, index: RuleIndex, forbidden, blocked_allowed, silent):
    """Per flow, its severity code on both axes (see the module docstring)."""
    required = np.array(
        [
            bool(d.rule) and index.matrix.rule(d.rule).required
            if d.verdict == "allowed" and d.rule
            else False
            for d in cls.decisions
        ]
        or [False]
    )
    sev = np.full(len(cls.verdict), INFO, np.int64)
    sev[forbidden & cls.answered] = ERROR
    sev[forbidden & cls.answered & cls.heuristic] = WARNING
    sev[forbidden & silent] = WARNING
    sev[blocked_allowed] = np.where(required[cls.decision[blocked_allowed]], ERROR, WARNING)
    return sev


def _example_frames(flows: Flows, sub, starts, sizes, several_files: bool) -> list[list[str]]:
    """Per group, the first frames of its first flows ("file:frame" across files)."""
    cols = []
    for k in range(EXAMPLE_FRAMES):
        at = np.minimum(starts + k, len(sub) - 1)
        ok = k < sizes
        cols.append((np.where(ok, flows["frame0"][sub[at]], -1), flows["file0"][sub[at]]))
    return [
        [
            f"{int(file[j])}:{int(frame[j])}" if several_files else str(int(frame[j]))
            for frame, file in cols
            if frame[j] >= 0
        ]
        for j in range(len(starts))
    ]
