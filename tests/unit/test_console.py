"""Colour and width, as no-color.org and terminals want them; the terminal cases
also on a real pseudo-terminal, not only a stream that says it is one."""

from __future__ import annotations

import io
import os

import pytest

from portmatrix import console


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("env", "tty", "color"),
    [
        ({}, True, True),
        ({}, False, False),
        ({"NO_COLOR": "1"}, True, False),
        ({"NO_COLOR": ""}, True, True),  # set but empty: not asked (no-color.org)
        ({"FORCE_COLOR": "1"}, False, True),
        ({"FORCE_COLOR": "0"}, False, False),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, True, False),
    ],
)
def test_use_color(monkeypatch, env, tty, color):
    for name in ("NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert console.use_color(TTY() if tty else io.StringIO()) is color


def test_width_is_80_off_a_terminal():
    assert console.width(io.StringIO()) == 80


@pytest.fixture
def terminal():
    """A stream on a real pseudo-terminal (its other end kept open)."""
    main_fd, sub_fd = os.openpty()
    stream = open(sub_fd, "w")  # noqa: SIM115 - closed below
    yield stream
    stream.close()
    os.close(main_fd)


def test_colour_and_width_on_a_real_terminal(monkeypatch, terminal):
    for name in ("NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "132")
    assert console.use_color(terminal) is True
    assert console.width(terminal) == 132
    assert console.width(io.StringIO()) == 80  # not a terminal: whatever COLUMNS says


def test_a_closed_stream_or_no_stream_is_no_terminal(monkeypatch):
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    stream = io.StringIO()
    stream.close()
    assert console.use_color(stream) is False and console.width(stream) == 80
    assert console.use_color(object()) is False


def test_say_and_out(capsys):
    console.say("portmatrix: wrote x")
    console.out("a\nb")
    captured = capsys.readouterr()
    assert captured.err == "portmatrix: wrote x\n"
    assert captured.out == "a\nb"  # as given, no newline added
