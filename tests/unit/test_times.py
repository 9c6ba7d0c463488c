"""Times and durations as people write them."""

from __future__ import annotations

import pytest

from portmatrix.times import Instant, duration_text, parse_duration, parse_instant, span_text


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("1.5", 1.5),
        ("30s", 30),
        ("10m", 600),
        ("1h30m", 5400),
        ("2d4h", 187200),
        ("1h30m15s", 5415),
        (" 2H ", 7200),
        ("1.5h", 5400),
        (45, 45),  # a number, not text
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1h3", "h", "1x", "1h1h", "-5s", "1 h", "ten"])
def test_not_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_instants():
    assert parse_instant("2024-03-01T10:00:00Z") == Instant(1_709_287_200_000_000_000)
    assert parse_instant("2024-03-01T10:00:00") == Instant(1_709_287_200_000_000_000)  # UTC
    assert parse_instant("2024-03-01T11:00:00+01:00") == Instant(1_709_287_200_000_000_000)
    assert parse_instant("1709287200") == Instant(1_709_287_200_000_000_000)
    assert parse_instant("1709287200.25").ns == 1_709_287_200_250_000_000
    offset = parse_instant("+1h30m")
    assert offset == Instant(5400 * 10**9, relative=True)
    assert offset.at(10**9) == 10**9 + 5400 * 10**9
    assert offset.at(None) is None  # no traffic: nothing to be relative to
    assert parse_instant("1709287200").at(None) == 1_709_287_200_000_000_000


@pytest.mark.parametrize(
    "text", ["yesterday", "2024-13-01", "+5 minutes", "+", "10:00 tomorrow", "", "+soon"]
)
def test_not_instants(text):
    with pytest.raises(ValueError):
        parse_instant(text)


def test_the_error_says_why():
    with pytest.raises(ValueError, match="'1h2h' names a unit twice"):
        parse_duration("1h2h")
    with pytest.raises(ValueError, match="'ten' is not a duration"):
        parse_duration("ten")
    with pytest.raises(ValueError, match="'yesterday' is not a time"):
        parse_instant("yesterday")


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2024-03-01T10:00:00.250Z", 1_709_287_200_250_000_000),
        ("2024-03-01 11:00:00+01:00", 1_709_287_200_000_000_000),  # a space for the T
    ],
)
def test_more_instant_forms(text, ns):
    instant = parse_instant(text)
    assert instant == Instant(ns) and instant.at(12345) == ns  # absolute: no start needed


@pytest.mark.parametrize(
    ("seconds", "text"), [(90, "1m30s"), (600, "10m"), (0.5, "0.5s"), (86400 + 3600, "1d1h")]
)
def test_durations_are_written_as_people_write_them(seconds, text):
    assert duration_text(seconds) == text
    assert parse_duration(text) == seconds  # and read back


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-1, "0 s"), (10.4, "10 s"), (89, "89 s"), (90, "2 min"), (600, "10 min"), (9000, "2.5 h")],
)
def test_a_stretch_of_time_is_said_as_in_a_sentence(seconds, text):
    assert span_text(seconds) == text
