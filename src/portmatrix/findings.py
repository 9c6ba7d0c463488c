"""Findings: what a check reports, grouped and graded on both axes of DESIGN.md.

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

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np

from portmatrix.addresses import to_text
from portmatrix.classify import ALLOWED, OUT_OF_SCOPE, Classified, matrix_port
from portmatrix.flows import OUTCOMES, UNANSWERED, Flows
from portmatrix.hashing import mix
from portmatrix.inventory import RoleMap
from portmatrix.lookup import VERDICTS, RuleIndex
from portmatrix.matrix import Matrix
from portmatrix.textforms import address_texts, iso, proto_name, service_text

SEVERITIES = ("info", "warning", "error")
INFO, WARNING, ERROR = range(3)
EXAMPLE_FRAMES = 5


@dataclass
class Finding:
    """One thing to report. Fields that do not apply to a kind are empty."""

    id: str
    severity: str  # info | warning | error
    kind: str  # flow | coverage | matrix
    verdict: str  # a flow verdict, or missing-required / required-unreachable /
    #              expired-exception
    message: str  # one sentence: what is wrong and which rule is involved
    proto: str = ""
    port: int | None = None
    initiator: str = ""
    initiator_roles: list[str] = field(default_factory=list)
    responder: str = ""
    responder_roles: list[str] = field(default_factory=list)
    rule: str = ""  # the rule involved: allowing, swapped, or the required one;
    #               "exception:ID" for traffic an exception allows
    related_rules: list[str] = field(default_factory=list)
    flows: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    packets: int = 0
    bytes: int = 0
    first_seen: str | None = None
    last_seen: str | None = None
    frames: list[str] = field(default_factory=list)  # example frames ("file:frame")
    filter: str = ""  # a Wireshark display filter that isolates the flows
    heuristic: bool = False  # rests only on a guessed initiator
    expired_exceptions: list[str] = field(default_factory=list)
    # The finding's flows, as indices into the flows it was found in (not reported).
    members: np.ndarray | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        del out["members"]
        for key in (
            "initiator_roles",
            "responder_roles",
            "related_rules",
            "frames",
            "expired_exceptions",
        ):
            out[key] = list(out[key])
        out["outcomes"] = dict(out["outcomes"])
        return out


@dataclass
class Coverage:
    """How a rule was exercised by the traffic."""

    rule: str
    service: str
    proto: str
    ports: str
    from_role: str
    to_role: str
    required: bool
    flows: int = 0
    established: int = 0
    failed: int = 0
    pairs: int = 0  # distinct initiator/responder pairs
    examples: list[str] = field(default_factory=list)  # a few "a -> b" pairs
    status: str = ""  # ok | missing-required | required-unreachable | "" (not required)

    @classmethod
    def of(cls, rule) -> Coverage:
        """A rule's coverage before any flow."""
        return cls(
            rule=rule.id,
            service=rule.service,
            proto=rule.proto,
            ports=rule.ports_text or "any",
            from_role=rule.from_role,
            to_role=rule.to_role,
            required=rule.required,
        )

    def to_dict(self) -> dict:
        return asdict(self)


class JudgedResult:
    """What every result with `findings` answers: counts by severity, the exit status."""

    findings: list[Finding]

    def severity_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(reversed(SEVERITIES), 0)
        for f in self.findings:
            counts[f.severity] += 1
        return counts

    def exit_code(self, fail_on: str) -> int:
        """1 when a finding is at least as severe as `fail_on` (or never), else 0."""
        if fail_on == "never":
            return 0
        floor = SEVERITIES.index(fail_on)
        return int(any(SEVERITIES.index(f.severity) >= floor for f in self.findings))


def stable_id(*parts: object) -> str:
    digest = hashlib.sha1("|".join(str(p) for p in parts).encode()).hexdigest()
    return f"PM-{digest[:10]}"


def _roles_text(roles: list[str]) -> str:
    return ", ".join(roles) if roles else "no role"


def _towards(roles: list[str]) -> str:
    return ", ".join(roles) if roles else "an address with no role"


def wireshark_filter(proto: str, init: str, resp: str, port: int | None) -> str:
    """A display filter for the flows initiator -> responder:port (and their replies).

    With ports it is directional, so flows between the same two hosts on the same
    port the other way round (often allowed: an admin's SSH to a node beside a
    node's SSH to the admin) are not selected. An ICMP error quoting a flow's
    packet still matches: tshark looks into the quoted headers too."""
    ip_ = "ipv6" if ":" in init else "ip"
    field_ = f"{ip_}.addr"
    if proto in ("tcp", "udp", "sctp") and port is not None:
        return (
            f"({ip_}.src=={init} && {ip_}.dst=={resp} && {proto}.dstport=={port}) || "
            f"({ip_}.src=={resp} && {ip_}.dst=={init} && {proto}.srcport=={port})"
        )
    parts = [f"{field_}=={init}", f"{field_}=={resp}"]
    if proto in ("icmp", "icmpv6"):
        parts.append(proto)
    elif proto.isdigit():
        parts.append(f"ip.proto=={proto}" if field_ == "ip.addr" else f"ipv6.nxt=={proto}")
    return " && ".join(parts)


def flow_findings(
    flows: Flows, cls: Classified, role_map: RoleMap, index: RuleIndex, several_files: bool
) -> list[Finding]:
    verdict = cls.verdict.astype(np.int64)
    forbidden = (verdict != ALLOWED) & (verdict != OUT_OF_SCOPE)
    blocked_allowed = (verdict == ALLOWED) & cls.failed
    chosen = np.flatnonzero(forbidden | blocked_allowed)
    if not len(chosen):
        return []
    required = np.array(
        [
            bool(d.rule) and index.matrix.rule(d.rule).required
            if d.verdict == "allowed" and d.rule
            else False
            for d in cls.decisions
        ]
        or [False]
    )
    sev = np.full(len(flows), INFO, np.int64)
    sev[forbidden & cls.answered] = ERROR
    sev[forbidden & cls.answered & cls.heuristic] = WARNING
    # Forbidden UDP (or another protocol without handshake) that got no reply: the
    # silence does not show it was blocked, it may have got through. Undecided.
    silent = (flows["outcome"] == UNANSWERED) & ~cls.failed
    sev[forbidden & silent] = WARNING
    sev[blocked_allowed] = np.where(required[cls.decision[blocked_allowed]], ERROR, WARNING)

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
    frame_cols = []
    for k in range(EXAMPLE_FRAMES):
        at = np.minimum(starts + k, len(sub) - 1)
        ok = k < sizes
        frame_cols.append((np.where(ok, flows["frame0"][sub[at]], -1), flows["file0"][sub[at]]))
    roles_text: dict[int, list[str]] = {}

    def roles(set_id: int) -> list[str]:
        if set_id not in roles_text:
            roles_text[set_id] = sorted(
                r for r in role_map.roles_of(set_id) if not r.startswith("exception:")
            )
        return roles_text[set_id]

    out = []
    for j, i in enumerate(rep.tolist()):
        frames = [
            f"{int(file[j])}:{int(frame[j])}" if several_files else str(int(frame[j]))
            for frame, file in frame_cols
            if frame[j] >= 0
        ]
        outcomes = {
            o: int(c) for o, c in zip(OUTCOMES, g["outcomes"][j].tolist(), strict=True) if c
        }
        out.append(
            _flow_finding(
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
                frames=frames,
                index=index,
            )
        )
    return out


def _flow_finding(
    *,
    decision,
    verdict,
    proto,
    port,
    init,
    resp,
    i_roles,
    r_roles,
    severity,
    heuristic,
    silent,
    members,
    outcomes,
    flows,
    packets,
    nbytes,
    first,
    last,
    frames,
    index,
) -> Finding:
    d = decision
    if proto not in ("tcp", "udp", "sctp", "icmp", "icmpv6"):
        port = None  # no ports the matrix could name
    what = service_text(proto, port)
    who = f"{init} ({_roles_text(i_roles)})"
    whom = f"{resp} ({_roles_text(r_roles)})"
    happened = _outcome_phrase(outcomes)
    rule_id = d.rule
    if verdict == "allowed":
        if d.exception:  # not a rule of the matrix: never required
            rule_id = f"exception:{d.exception}"
            by = f"exception {d.exception}"
        else:
            rule = index.matrix.rule(d.rule)
            by = f"{'required ' if rule.required else ''}rule {rule.id} ({rule.service})"
        message = f"{who} → {whom} {what} is allowed by {by} but {happened}"
        fid_verdict = "allowed-failed"
    elif verdict == "wrong-direction":
        rule = index.matrix.rule(d.rule)
        message = (
            f"{who} opened {what} on {whom} ({happened}); the matrix allows only the "
            f"other way: rule {rule.id} ({rule.from_role} → {rule.to_role})"
        )
        fid_verdict = verdict
    elif verdict == "unexpected-source":
        message = (
            f"{who} reached {what} on {whom} ({happened}); that port is only allowed "
            f"from other sources: {', '.join(d.related)}"
        )
        fid_verdict = verdict
    else:
        message = (
            f"{who} reached {what} on {whom} ({happened}); nothing in the matrix "
            f"allows {what} towards {_towards(r_roles)}"
        )
        fid_verdict = verdict
    if heuristic:
        message += " — initiator guessed from ports (handshake not captured)"
    if verdict != "allowed" and silent:
        message += " — no reply, which does not show it was blocked"
    if d.expired:
        message += f"; expired exception {', '.join(d.expired)} would have allowed it"
    return Finding(
        id=stable_id(fid_verdict, ",".join(i_roles), init, ",".join(r_roles), resp, proto, port),
        severity=SEVERITIES[severity],
        kind="flow",
        verdict=verdict,
        message=message,
        proto=proto,
        port=port,
        initiator=init,
        initiator_roles=i_roles,
        responder=resp,
        responder_roles=r_roles,
        rule=rule_id,
        related_rules=list(d.related),
        flows=flows,
        outcomes=outcomes,
        packets=packets,
        bytes=nbytes,
        first_seen=first,
        last_seen=last,
        frames=frames,
        filter=wireshark_filter(proto, init, resp, port),
        heuristic=heuristic,
        expired_exceptions=list(d.expired),
        members=members,
    )


def _outcome_phrase(outcomes: dict[str, int]) -> str:
    phrases = {
        "established": "established",
        "refused": "refused",
        "unanswered": "left unanswered",
        "midstream": "seen mid-stream",
    }
    parts = [
        phrases[o] if n == 1 and len(outcomes) == 1 else f"{n} {phrases[o]}"
        for o, n in outcomes.items()
    ]
    return " and ".join(parts)


def coverage(
    flows: Flows, cls: Classified, matrix: Matrix, weakened: bool
) -> tuple[list[Coverage], list[Finding]]:
    """Coverage of every rule, and the findings for required rules not exercised."""
    covers: dict[str, list[int]] = {}
    for k, d in enumerate(cls.decisions):
        for rule_id in d.covers:
            covers.setdefault(rule_id, []).append(k)
    out, findings = [], []
    dec = cls.decision
    for rule in matrix.rules:
        cov = Coverage.of(rule)
        ks = covers.get(rule.id)
        if ks:
            mine = np.isin(dec, ks)
            cov.flows = int(mine.sum())
            cov.established = int((mine & cls.answered).sum())
            cov.failed = int((mine & cls.failed).sum())
            cols = [flows[c][mine] for c in ("init_hi", "init_lo", "resp_hi", "resp_lo")]
            # Distinct pairs: one hash per flow is far cheaper than a row-wise unique.
            _, first = np.unique(mix(*cols), return_index=True)
            pairs = np.stack([c[np.sort(first)] for c in cols], axis=1)
            cov.pairs = len(pairs)
            cov.examples = [
                f"{to_text((int(a) << 64) | int(b))} → {to_text((int(c) << 64) | int(e))}"
                for a, b, c, e in pairs[:3].tolist()
            ]
        if rule.required:
            cov.status = required_status(cov)
            if cov.status != "ok":
                findings.append(coverage_finding(rule, cov, weakened))
        out.append(cov)
    return out, findings


def required_status(cov: Coverage) -> str:
    """ok with an established flow; required-unreachable with failed attempts only;
    missing-required with neither."""
    if cov.established:
        return "ok"
    return "required-unreachable" if cov.failed else "missing-required"


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Errors first; flows before coverage and matrix findings; then stable fields."""
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    return sorted(
        findings,
        key=lambda f: (
            order[f.severity],
            f.kind != "flow",
            f.verdict,
            f.initiator,
            f.responder,
            f.port or 0,
            f.id,
        ),
    )


def coverage_finding(rule, cov: Coverage, weakened: bool) -> Finding:
    what = f"{rule.proto}/{rule.ports_text}" if rule.ports else rule.proto
    if cov.status == "required-unreachable":
        message = (
            f"required rule {rule.id} ({rule.service}, {rule.from_role} → "
            f"{rule.to_role} {what}) had {cov.failed} attempt(s), none answered: "
            "something blocks a port the matrix needs"
        )
    else:
        message = (
            f"required rule {rule.id} ({rule.service}, {rule.from_role} → "
            f"{rule.to_role} {what}) has no established flow in the capture"
        )
    if weakened:
        message += " — but the capture is incomplete (see notices), so this may be missed "
        message += "traffic rather than a missing service"
    return Finding(
        id=stable_id(cov.status, rule.id),
        severity="warning" if weakened else "error",
        kind="coverage",
        verdict=cov.status,
        message=message,
        proto=rule.proto,
        port=rule.ports[0][0] if rule.ports else None,
        initiator_roles=[rule.from_role],
        responder_roles=[rule.to_role],
        rule=rule.id,
        flows=cov.flows,
        outcomes={"failed": cov.failed} if cov.failed else {},
    )


def matrix_findings(matrix: Matrix, index: RuleIndex) -> list[Finding]:
    out = []
    for exc in index.expired:
        out.append(
            Finding(
                id=stable_id("expired-exception", exc.id),
                severity="warning",
                kind="matrix",
                verdict="expired-exception",
                message=f"exception {exc.id} ({exc.source}) expired on {exc.expires} and no "
                f"longer allows anything; reason was: {exc.reason}",
                rule=exc.id,
            )
        )
    return out
