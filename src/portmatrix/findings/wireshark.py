"""Wireshark display filters that select a finding's flows (tshark -Y, Wireshark's
filter bar)."""

from __future__ import annotations

PORTED = ("tcp", "udp", "sctp")


def wireshark_filter(
    proto: str | None,
    inits: list[str] | None,
    resps: list[str] | None,
    runs: list[tuple[int, int, int]],
) -> str:
    """A display filter for the flows initiators -> responders on the ports of `runs`
    ((proto, first, last) each), and their replies.

    A side given as None (too many hosts to name) is left open, so the filter then
    selects more than the finding. With ports it is directional: flows between the
    same hosts on the same port the other way round (often allowed: an admin's SSH
    to a node beside a node's SSH to the admin) are not selected. An ICMP error
    quoting a flow's packet still matches: tshark looks into the quoted headers too.
    IPv4 and IPv6 hosts of one finding give one clause per family."""
    if inits is None and resps is None:
        return _family("", proto, None, None, runs)
    clauses = []
    for ip_ in ("ip", "ipv6"):
        mine = [
            [h for h in side if (":" in h) == (ip_ == "ipv6")] if side else None
            for side in (inits, resps)
        ]
        if any(
            side is not None and not kept for side, kept in zip((inits, resps), mine, strict=True)
        ):
            continue  # no host of this family on a named side
        clauses.append(_family(ip_, proto, mine[0], mine[1], runs))
    if len(clauses) == 1:
        return clauses[0]
    return " || ".join(f"({c})" for c in clauses)


def _hosts(ip_: str, field: str, hosts: list[str] | None) -> str | None:
    if not hosts:
        return None
    if len(hosts) == 1:
        return f"{ip_}.{field}=={hosts[0]}"
    return f"{ip_}.{field} in {{{', '.join(hosts)}}}"


def _ports(runs: list[tuple[int, int, int]]) -> str:
    values = [str(lo) if lo == hi else f"{lo}..{hi}" for _, lo, hi in runs]
    return (
        f"=={values[0]}"
        if len(values) == 1 and ".." not in values[0]
        else (f" in {{{', '.join(values)}}}")
    )


def _family(ip_: str, proto: str | None, inits, resps, runs) -> str:
    if proto in PORTED and runs:
        ports = _ports(runs)
        fwd = [_hosts(ip_, "src", inits), _hosts(ip_, "dst", resps), f"{proto}.dstport{ports}"]
        rev = [_hosts(ip_, "src", resps), _hosts(ip_, "dst", inits), f"{proto}.srcport{ports}"]
        return f"({' && '.join(filter(None, fwd))}) || ({' && '.join(filter(None, rev))})"
    if not ip_:  # neither side named, no ports: the protocol alone
        return proto or "ip"
    if inits and resps and len(inits) == 1 and len(resps) == 1:
        parts = [f"{ip_}.addr=={inits[0]}", f"{ip_}.addr=={resps[0]}"]
    else:
        fwd = list(filter(None, [_hosts(ip_, "src", inits), _hosts(ip_, "dst", resps)]))
        rev = list(filter(None, [_hosts(ip_, "src", resps), _hosts(ip_, "dst", inits)]))
        if not fwd:
            parts = [ip_ or "ip"]
        elif fwd == rev:  # hosts of one group among themselves: both ways read alike
            parts = [f"({' && '.join(fwd)})"]
        else:
            parts = [f"(({' && '.join(fwd)}) || ({' && '.join(rev)}))"]
    if proto in ("icmp", "icmpv6"):
        parts.append(proto)
    elif proto and proto.isdigit():
        parts.append(f"ip.proto=={proto}" if ip_ == "ip" else f"ipv6.nxt=={proto}")
    return " && ".join(parts)
