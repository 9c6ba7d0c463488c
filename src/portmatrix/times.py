"""Times and durations as people write them, read once for every option that takes
one (--since, --until, --duration, --report-every, --idle-timeout, ...).

Durations: plain seconds (90, 1.5) or compound units (90s, 10m, 1h30m, 2d4h,
1h30m15s). Instants: ISO 8601 (UTC when no zone is given), epoch seconds
(1709287200 or 1709287200.25; a number too large to be seconds is read as
milliseconds, then microseconds, then nanoseconds), or an offset from the
capture's start (+90s, +1h30m). Light on purpose (no numpy): the CLI checks these before reading.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
DURATION_HINT = "write seconds or units, e.g. 90, 30s, 10m, 1h30m, 2d"
INSTANT_HINT = (
    "write ISO 8601 (2024-03-01T10:00:00Z), epoch seconds (1709287200) or an offset "
    "from the capture's start (+90s, +1h30m)"
)


def parse_duration(text: str) -> float:
    """Seconds in `text` (90, 1.5, 30s, 1h30m, 2d4h); ValueError when it is none."""
    text = str(text).strip().lower()
    if _NUMBER.fullmatch(text):
        return float(text)
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration")
    units = [u for _, u in parts]
    if len(set(units)) != len(units):
        raise ValueError(f"{text!r} names a unit twice")
    return sum(float(n) * UNITS[u] for n, u in parts)


def duration_text(seconds: float) -> str:
    """90 -> "1m30s": exact, and read back by parse_duration (a configuration
    file written by --print-config)."""
    if seconds != int(seconds):
        return f"{seconds:g}s"
    rest, out = int(seconds), ""
    for unit, size in sorted(UNITS.items(), key=lambda item: -item[1])[:-1]:
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out + (f"{rest}s" if rest or not out else "")


def span_text(seconds: float) -> str:
    """10 s, 10 min, 2.5 h: a stretch of time as a person says it in a sentence."""
    seconds = max(0, seconds)
    if seconds >= 5400:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 90:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds)} s"


@dataclass(frozen=True)
class Instant:
    """A point in time: absolute (ns since the epoch) or an offset from the start."""

    ns: int
    relative: bool = False

    def at(self, start_ns: int | None) -> int | None:
        """The instant in ns since the epoch; a relative one needs the capture start."""
        if not self.relative:
            return self.ns
        return None if start_ns is None else start_ns + self.ns


def _epoch_ns(text: str) -> int:
    """Epoch seconds; milliseconds, microseconds or nanoseconds when the number is
    too large to be seconds (Kibana and Elasticsearch export milliseconds): a
    value of 1e11 or more would be in the year 5138 as seconds."""
    value = Decimal(text)  # exact, where a float would lose nanoseconds
    for limit, ns_per_unit in ((10**11, 10**9), (10**14, 10**6), (10**17, 10**3)):
        if value < limit:
            return int(value * ns_per_unit)
    return int(value)


def parse_instant(text: str) -> Instant:
    """An Instant from `text`; ValueError when it is none of the accepted forms."""
    text = str(text).strip()
    if text.startswith("+"):
        return Instant(int(parse_duration(text[1:]) * 1e9), relative=True)
    if _NUMBER.fullmatch(text):
        return Instant(_epoch_ns(text))
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)  # captures are in UTC; so are naive times
    return Instant(int(when.timestamp() * 1_000_000) * 1000)


def stamp(now: dt.datetime | None = None) -> str:
    """The time now, ISO 8601 UTC to the second: 2025-01-31T10:00:00Z."""
    now = now or dt.datetime.now(dt.UTC)
    return now.isoformat(timespec="seconds").replace("+00:00", "Z")
