"""The watch loop with a stand-in live source (no capture privileges needed):
findings announced once, stamped lines, log files reopened on SIGHUP without a
line lost, the state saved as it runs, a stop honoured while batches wait."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest

from portmatrix.policy.inventory import load_inventory
from portmatrix.policy.matrix import load_matrix
from portmatrix.sources.capture import Capture
from portmatrix.watch import loop
from portmatrix.watch.loop import Schedule, run_watch
from portmatrix.watch.outputs import LineFile, Outputs
from portmatrix.watch.state import StateFile
from portmatrix.watch.watcher import Watcher
from support import paths

DEMO, DEMO_INVENTORY = str(paths.DEMO), str(paths.DEMO_INVENTORY)
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "


class FileSource:
    """A capture file standing in for a live interface; `pause` seconds between
    batches, and `between(k)` called before the k-th batch."""

    ifaces: list[str] = ["eth0"]  # noqa: RUF012

    def __init__(self, path: str, died: str = "", pause: float = 0.0, between=None) -> None:
        self.capture = Capture(path)
        self.info = self.capture.info
        self.died = died
        self.pause = pause
        self.between = between
        self.stopped = False

    def batches(self):
        for k, raw in enumerate(self.capture.batches()):
            if self.between:
                self.between(k)
            time.sleep(self.pause)
            yield raw

    def stop(self) -> None:
        self.stopped = True

    def kill(self) -> None:
        pass


def watcher() -> Watcher:
    matrix = load_matrix(["thoughtspot"])
    return Watcher(matrix, load_inventory(DEMO_INVENTORY, matrix))


def watch(tmp_path, source, duration=None, state=None, w=None):
    lines: list[str] = []
    jsonl = LineFile(str(tmp_path / "findings.jsonl"), "--jsonl")
    log = LineFile(str(tmp_path / "watch.log"), "--log")
    try:
        result, failure = run_watch(
            source,
            w or watcher(),
            Outputs(lines.append, log=log, jsonl=jsonl, ifaces=["eth0"]),
            Schedule(duration=duration, report_every=0.0),
            state=state,
        )
    finally:
        jsonl.close()
        log.close()
    return result, failure, lines


def records(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_every_finding_is_announced_once_in_lines_and_json_lines(tmp_path):
    result, failure, lines = watch(tmp_path, FileSource(DEMO))
    assert failure == ""
    events = records(tmp_path / "findings.jsonl")
    ids = [r["event"]["id"] for r in events]
    assert len(ids) == len(set(ids)) == len(result.findings)
    assert set(ids) == {f.id for f in result.findings}
    news = [line for line in lines if re.match(STAMP + "NEW ", line)]
    assert len(news) == len(result.findings)
    assert all(re.match(STAMP, line) for line in lines)  # every live line says when
    assert any(re.match(STAMP + r"268 packets .*; flows: .*; dropped 0 \(\+0\)", x) for x in lines)
    assert (tmp_path / "watch.log").read_text().splitlines() == lines  # the log: the same
    assert result.verdict_counts()["unexpected-port"] == 3
    assert result.traffic.captures[0].path == DEMO
    assert {r["event"]["reason"] for r in events} == {"new"}


def test_a_capture_that_dies_is_reported_with_what_was_seen(tmp_path):
    result, failure, _ = watch(tmp_path, FileSource(DEMO, died="dumpcap: killed"))
    assert failure == "dumpcap: killed"
    assert sum(result.verdict_counts().values()) == 40


def test_sighup_reopens_the_files_and_no_line_is_lost(tmp_path, small_chunks, monkeypatch):
    """As logrotate does: move the files away, then HUP; lines written before the HUP
    are in the moved files, the rest in new ones."""
    monkeypatch.setattr(loop, "TICK", 0.05)
    jsonl, log = tmp_path / "findings.jsonl", tmp_path / "watch.log"

    def rotate(k: int) -> None:
        if k == 100:  # of 172
            jsonl.rename(tmp_path / "findings.jsonl.1")
            log.rename(tmp_path / "watch.log.1")
            os.kill(os.getpid(), signal.SIGHUP)

    result, _, lines = watch(tmp_path, FileSource(DEMO, pause=0.01, between=rotate))
    before, after = records(tmp_path / "findings.jsonl.1"), records(jsonl)
    assert before and after  # findings came on both sides of the rotation
    assert sorted(r["event"]["id"] for r in before + after) == sorted(f.id for f in result.findings)
    logged = (tmp_path / "watch.log.1").read_text().splitlines() + log.read_text().splitlines()
    assert logged == lines


def test_a_stop_is_honoured_within_a_second_and_later_packets_are_counted(tmp_path, monkeypatch):
    """A watch far behind its capture: after the stop, one second of analysis, then
    what still comes is counted (as not analysed), not worked through."""
    monkeypatch.setattr(loop, "GRACE", 0.2)
    slow = FileSource(DEMO)
    w = watcher()
    add = w.add

    def slow_add(*args):  # as if every batch took a second to analyse
        time.sleep(0.5)
        add(*args)

    w.add = slow_add
    started = time.monotonic()
    result, failure, _ = watch(tmp_path, _Repeated(slow, 20), duration=0.3, w=w)
    took = time.monotonic() - started
    assert failure == ""
    assert took < 3.0  # not the 10 s that 20 batches would take
    analysed = result.traffic.packets
    assert analysed and analysed % 268 == 0 and analysed < 20 * 268
    assert result.traffic.drops == 20 * 268 - analysed
    assert any("not analysed" in n for n in result.notices)


class _Repeated:
    """A source yielding the same capture's batches `times` times at once."""

    ifaces: list[str] = ["eth0"]  # noqa: RUF012
    died = ""

    def __init__(self, source: FileSource, times: int) -> None:
        self.raw = list(source.capture.batches())
        self.info = source.info
        self.times = times

    def batches(self):
        for _ in range(self.times):
            yield from self.raw

    def stop(self) -> None:
        pass

    def kill(self) -> None:
        pass


def test_the_state_is_saved_every_report_and_at_the_end(tmp_path):
    state = StateFile(str(tmp_path / "state.json"))
    result, _, _ = watch(tmp_path, FileSource(DEMO), state=state)
    assert state.saves >= 2  # at least one report, and the end
    doc = json.loads((tmp_path / "state.json").read_text())
    assert set(doc["announced"]) == {f.id for f in result.findings}
    assert doc["traffic"]["frames"] == 268


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_watch_with_its_report(tmp_path, sig):
    def interrupt(k: int) -> None:
        if k == 0:
            os.kill(os.getpid(), sig)

    source = _Forever(FileSource(DEMO, between=interrupt))
    result, failure, lines = watch(tmp_path, source)
    assert failure == "" and source.stopped
    assert "stopping — writing the report" in lines[0]
    assert result.traffic.packets >= 268


class _Forever(FileSource):
    """The capture, then nothing until stopped (a quiet link)."""

    def __init__(self, inner: FileSource) -> None:
        self.inner = inner
        self.info = inner.info
        self.died = ""
        self.stopped = False

    def batches(self):
        yield from self.inner.batches()
        while not self.stopped:
            time.sleep(0.05)

    def stop(self) -> None:
        self.stopped = True
