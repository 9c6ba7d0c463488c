"""The terminal: colour by NO_COLOR / FORCE_COLOR / a real terminal, the width of
the terminal, lines to stderr and text to stdout. The terminal cases run on a
real pseudo-terminal, not a mock."""

from __future__ import annotations

import io
import os

import pytest

from portmatrix import console


@pytest.fixture
def terminal():
    """A stream on a real pseudo-terminal (its other end kept open)."""
    main_fd, sub_fd = os.openpty()
    stream = open(sub_fd, "w")  # noqa: SIM115 - closed below
    yield stream
    stream.close()
    os.close(main_fd)


@pytest.fixture(autouse=True)
def no_colour_settings(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)


def test_colour_on_a_terminal_only(terminal):
    assert console.use_color(terminal) is True
    assert console.use_color(io.StringIO()) is False


@pytest.mark.parametrize(
    ("env", "on_terminal", "piped"),
    [
        ({"NO_COLOR": "1"}, False, False),
        ({"NO_COLOR": ""}, True, False),  # set but empty: not asked (no-color.org)
        ({"FORCE_COLOR": "1"}, True, True),
        ({"FORCE_COLOR": "0"}, True, False),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, False, False),  # "no" wins
    ],
)
def test_colour_settings(monkeypatch, terminal, env, on_terminal, piped):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert console.use_color(terminal) is on_terminal
    assert console.use_color(io.StringIO()) is piped


def test_width_of_the_terminal_or_80(monkeypatch, terminal):
    monkeypatch.setenv("COLUMNS", "132")
    assert console.width(terminal) == 132
    assert console.width(io.StringIO()) == 80  # not a terminal: whatever COLUMNS says


def test_a_closed_stream_is_no_terminal():
    stream = io.StringIO()
    stream.close()
    assert console.use_color(stream) is False and console.width(stream) == 80
    assert console.use_color(object()) is False  # not a stream at all


def test_say_and_out(capsys):
    console.say("portmatrix: wrote x")
    console.out("a\nb")
    captured = capsys.readouterr()
    assert captured.err == "portmatrix: wrote x\n"
    assert captured.out == "a\nb"  # as given, no newline added
