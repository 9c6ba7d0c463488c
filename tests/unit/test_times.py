"""Times and durations as people write them: every accepted form, and a clear
ValueError for the rest (the CLI turns it into a one-line error with the hint)."""

from __future__ import annotations

import datetime as dt

import pytest

from portmatrix.times import Instant, parse_duration, parse_instant

MARCH_1 = int(dt.datetime(2024, 3, 1, 10, 0, tzinfo=dt.UTC).timestamp()) * 10**9


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("1.5", 1.5),
        (" 30s ", 30),
        ("10m", 600),
        ("1h30m", 5400),
        ("2d4h", 2 * 86400 + 4 * 3600),
        ("1h30m15s", 5415),
        ("1.5h", 5400),
        ("10M", 600),  # units in either case
        (45, 45),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "is not a duration"),
        ("ten", "is not a duration"),
        ("10x", "is not a duration"),
        ("1h 30m", "is not a duration"),
        ("-5s", "is not a duration"),
        ("m", "is not a duration"),
        ("1h2h", "names a unit twice"),
    ],
)
def test_not_durations(text, why):
    with pytest.raises(ValueError, match=why):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2024-03-01T10:00:00Z", MARCH_1),
        ("2024-03-01T10:00:00", MARCH_1),  # no zone: UTC, as captures are
        ("2024-03-01 11:00:00+01:00", MARCH_1),
        ("2024-03-01T10:00:00.250Z", MARCH_1 + 250_000_000),
        (str(MARCH_1 // 10**9), MARCH_1),
        (f"{MARCH_1 // 10**9}.25", MARCH_1 + 250_000_000),
    ],
)
def test_absolute_instants(text, ns):
    instant = parse_instant(text)
    assert instant == Instant(ns) and not instant.relative
    assert instant.at(None) == ns == instant.at(12345)


def test_relative_instants_count_from_the_capture_start():
    instant = parse_instant("+1h30m")
    assert instant == Instant(5400 * 10**9, relative=True)
    assert instant.at(MARCH_1) == MARCH_1 + 5400 * 10**9
    assert instant.at(None) is None  # no capture, no start
    assert parse_instant("+90").at(0) == 90 * 10**9


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "+soon", "10:00 tomorrow", ""])
def test_not_instants(text):
    with pytest.raises(ValueError):
        parse_instant(text)
