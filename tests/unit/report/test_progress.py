"""The progress bar: on stderr only when it is a terminal, enabled and there is
something to read; its callback takes (bytes, packets)."""

from __future__ import annotations

import io
import sys

import pytest

from portmatrix.report import progress as progress_module
from portmatrix.report.progress import progress


@pytest.fixture(autouse=True)
def _no_delay(monkeypatch):
    """The bar waits half a second before it appears; these tests look at once. No
    bar was shown before each."""
    monkeypatch.setattr(progress_module, "DELAY", 0.0)
    monkeypatch.setattr(progress_module._Bar, "shown_before", False)


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_no_bar_when_stderr_is_piped(monkeypatch):
    pipe = Pipe()
    monkeypatch.setattr(sys, "stderr", pipe)
    with progress(10_000, True) as on_batch:
        assert on_batch is None
    assert pipe.getvalue() == ""


@pytest.mark.parametrize(("total", "enabled"), [(10_000, False), (0, True)])
def test_no_bar_when_quiet_or_nothing_to_read(monkeypatch, total, enabled):
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    with progress(total, enabled) as on_batch:
        assert on_batch is None
    assert tty.getvalue() == ""


def test_a_short_read_shows_no_bar(monkeypatch):
    monkeypatch.setattr(progress_module, "DELAY", 60.0)
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    with progress(2_000, True) as on_batch:
        on_batch(2_000, 100)
    assert tty.getvalue() == ""


def test_bar_on_a_terminal(monkeypatch):
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    with progress(2_000, True) as on_batch:
        assert callable(on_batch)
        on_batch(1_000, 50)
        on_batch(1_000, 50)
        on_batch(0, 0)
    shown = tty.getvalue()
    assert "reading" in shown
    assert "2.0/2.0 kB" in shown  # the callback advanced the bar to the end


def test_the_bar_is_fed_by_read_traffic(monkeypatch, tmp_path):
    from portmatrix.flows.from_captures import read_traffic
    from portmatrix.testing.captures import ether, tcp_session, write_pcap

    path = write_pcap(
        tmp_path / "c.pcap", [ether(p) for p in tcp_session("10.0.0.1", "10.0.0.2", 1, 2)]
    )
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    size = path.stat().st_size
    with progress(size, True) as on_batch:
        traffic = read_traffic([str(path)], on_batch=on_batch)
    assert traffic.packets == 8
    assert "reading" in tty.getvalue()


def test_the_next_pass_of_a_long_run_shows_its_bar_at_once(monkeypatch):
    """A short read shows no bar, unless a bar was shown before in this run: then
    the next pass (evidence's extracting, check's labelling) shows one at once."""
    monkeypatch.setattr(progress_module, "DELAY", 60.0)
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    with progress(2_000, True, "second") as on_batch:
        on_batch(2_000, 100)
    assert tty.getvalue() == ""
    monkeypatch.setattr(progress_module._Bar, "shown_before", True)
    with progress(2_000, True, "second") as on_batch:
        on_batch(2_000, 100)
    assert "second" in tty.getvalue()
