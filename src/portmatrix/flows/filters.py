"""Narrowing for forensics: a time window, hosts, ports, verdicts, roles.

Filters apply to flows. Time, host and port narrow the flows before they are
judged; verdict and role narrow the judged flows. Every report states the
filters it was made with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from portmatrix.addresses import parse_entry
from portmatrix.errors import PortmatrixError
from portmatrix.flows.model import Flows
from portmatrix.times import INSTANT_HINT, Instant, parse_instant


@dataclass
class FlowFilter:
    since: str | None = None  # as given: ISO 8601, or +OFFSET from the capture start
    until: str | None = None
    hosts: tuple[str, ...] = ()  # addresses or CIDR blocks; a flow matches by either end
    ports: tuple[int, ...] = ()  # either end's port
    verdicts: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()  # either end holds one of these roles
    _ranges: list[tuple[int, int]] = field(default_factory=list, repr=False)
    _since: Instant | None = field(default=None, repr=False)
    _until: Instant | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Checked here, before any capture is read.
        self._since = _instant(self.since, "--since")
        self._until = _instant(self.until, "--until")
        if (
            self._since
            and self._until
            and self._since.relative == self._until.relative
            and self._until.ns < self._since.ns
        ):
            raise PortmatrixError(
                f"{self.until!r} is before --since {self.since!r}: the window holds nothing",
                where="--until",
                hint="swap them, or widen the window",
            )
        for host in self.hosts:
            try:
                entry = parse_entry(host)
            except ValueError as exc:
                raise PortmatrixError(
                    str(exc), where="--host", hint="give an address or a CIDR block"
                ) from None
            if entry.hostname:
                raise PortmatrixError(
                    f"{host!r} is a hostname",
                    where="--host",
                    hint="give an address or a CIDR block",
                )
            self._ranges.append((entry.first, entry.last))

    @property
    def active(self) -> bool:
        return bool(
            self.since or self.until or self.hosts or self.ports or self.verdicts or self.roles
        )

    @property
    def narrows_services(self) -> bool:
        """Anything but a time window: the coverage of required services is partial."""
        return bool(self.hosts or self.ports or self.verdicts or self.roles)

    def text(self) -> str:
        """The filters as they were given on the command line."""
        return ", ".join(
            f"--{name.rstrip('s') if isinstance(values, list) else name} "
            + (" ".join(map(str, values)) if isinstance(values, list) else str(values))
            for name, values in self.describe().items()
        )

    def describe(self) -> dict:
        return {
            k: v
            for k, v in (
                ("since", self.since),
                ("until", self.until),
                ("hosts", list(self.hosts)),
                ("ports", list(self.ports)),
                ("verdicts", list(self.verdicts)),
                ("roles", list(self.roles)),
            )
            if v
        }

    def window(self, start_ns: int | None) -> tuple[int | None, int | None]:
        """The time window in ns since the epoch; relative times count from `start_ns`."""
        return (
            self._since.at(start_ns) if self._since else None,
            self._until.at(start_ns) if self._until else None,
        )

    def missed(self, first_ns: int | None, last_ns: int | None) -> str:
        """A sentence when the time window holds none of the traffic between
        `first_ns` and `last_ns`, else "" (no traffic: nothing to miss)."""
        if not (self.since or self.until) or first_ns is None:
            return ""
        since, until = self.window(first_ns)
        if (since is None or since <= last_ns) and (until is None or until >= first_ns):
            return ""
        from portmatrix.textforms import iso

        first, last = iso(np.array([first_ns, last_ns]))
        options = (("--since", self.since), ("--until", self.until))
        asked = ", ".join(f"{name} {value}" for name, value in options if value)
        return (
            f"the time window ({asked}) holds none of the traffic, which runs from "
            f"{first} to {last}"
        )

    def traffic_mask(self, flows: Flows, start_ns: int | None) -> np.ndarray:
        """Flows within the window, with a chosen host and port."""
        mask = np.ones(len(flows), bool)
        since, until = self.window(start_ns)
        if since is not None:
            mask &= flows["last_ts"] >= since
        if until is not None:
            mask &= flows["first_ts"] <= until
        if self._ranges:
            hit = np.zeros(len(flows), bool)
            for side in ("init", "resp"):
                hi, lo = flows[f"{side}_hi"], flows[f"{side}_lo"]
                for first, last in self._ranges:
                    hit |= _within(hi, lo, first, last)
            mask &= hit
        if self.ports:
            hit = np.zeros(len(flows), bool)
            for port in self.ports:
                hit |= (flows["init_port"] == port) | (flows["resp_port"] == port)
            mask &= hit
        return mask


def _within(hi: np.ndarray, lo: np.ndarray, first: int, last: int) -> np.ndarray:
    """Addresses (two uint64 halves) inside [first, last] (128-bit integers)."""
    f_hi, f_lo = np.uint64(first >> 64), np.uint64(first & (2**64 - 1))
    l_hi, l_lo = np.uint64(last >> 64), np.uint64(last & (2**64 - 1))
    above = (hi > f_hi) | ((hi == f_hi) & (lo >= f_lo))
    below = (hi < l_hi) | ((hi == l_hi) & (lo <= l_lo))
    return above & below


def _instant(text: str | None, option: str) -> Instant | None:
    if not text:
        return None
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise PortmatrixError(str(exc), where=option, hint=INSTANT_HINT) from None
