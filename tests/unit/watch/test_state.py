"""The state a watch keeps across restarts: everything the final report needs
comes back, the file is replaced whole or not at all, and a file that is not a
state of this matrix's watch is refused with one line."""

from __future__ import annotations

import json
import os

import pytest

from portmatrix.decode import decode
from portmatrix.errors import PortmatrixError
from portmatrix.policy.inventory import load_inventory
from portmatrix.policy.matrix import load_matrix
from portmatrix.sources.capture import Capture
from portmatrix.watch.drops import DropMeter
from portmatrix.watch.state import StateFile
from portmatrix.watch.watcher import Watcher
from support import paths


def watcher() -> Watcher:
    matrix = load_matrix(["thoughtspot"])
    return Watcher(matrix, load_inventory(str(paths.DEMO_INVENTORY), matrix))


def watched() -> Watcher:
    w = watcher()
    for raw in Capture(str(paths.DEMO)).batches():
        w.add(*decode(raw))
    w.tick(w.last_ts + 200 * 10**9)  # every flow over: findings made
    return w


def meter(lost: int = 0) -> DropMeter:
    m = DropMeter(["eth0"], None, 0)
    m.unanalysed = lost
    return m


def test_a_restored_watch_reports_what_the_first_found(tmp_path):
    first = watched()
    state = StateFile(str(tmp_path / "state.json"))
    state.save(first, meter(5))
    before = first.finish(drops=5)
    second = watcher()
    assert state.load(second)
    assert second.announced == first.announced and second.runs == 2
    # Roll-ups reached stay reached: their hosts are not told one by one again.
    assert second.grouper.sources.reached == first.grouper.sources.reached
    assert second.grouper.ports.reached == first.grouper.ports.reached
    assert second.grouper.scans.scanners == first.grouper.scans.scanners
    after = second.finish(drops=0)
    assert [(f.id, f.flows, f.packets, f.severity) for f in after.findings] == [
        (f.id, f.flows, f.packets, f.severity) for f in before.findings
    ]
    assert after.verdict_counts() == before.verdict_counts()
    assert after.traffic.packets == before.traffic.packets and after.traffic.drops == 5
    assert [(c.rule, c.flows, c.established, c.pairs) for c in after.coverage] == [
        (c.rule, c.flows, c.established, c.pairs) for c in before.coverage
    ]
    assert any("over 2 runs of watch" in n for n in after.notices)


def test_the_same_problem_after_a_restart_adds_up(tmp_path):
    state = StateFile(str(tmp_path / "state.json"))
    state.save(watched(), meter())
    again = watcher()
    state.load(again)
    for raw in Capture(str(paths.DEMO)).batches():
        again.add(*decode(raw))
    assert again.tick(again.last_ts + 200 * 10**9) == []  # nothing announced anew
    once = watched().finish()
    twice = again.finish()
    flows = {f.id: f.flows for f in once.findings if f.kind == "flow"}
    assert {f.id: f.flows for f in twice.findings if f.kind == "flow"} == {
        k: 2 * v for k, v in flows.items()
    }


def test_saving_replaces_the_file_whole(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("old")
    StateFile(str(path)).save(watched(), meter())
    assert json.loads(path.read_text())["portmatrix-watch-state"] == 1
    assert os.listdir(tmp_path) == ["state.json"]  # no temporary file left


def test_a_save_that_fails_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    path.write_text("old")

    def broken(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(PortmatrixError, match="cannot write") as err:
        StateFile(str(path)).save(watched(), meter())
    assert err.value.where == "--state"
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["state.json"]


KILLED_HALF_WAY = """
import os, sys
from portmatrix import files
from portmatrix.decode import decode
from portmatrix.policy.inventory import load_inventory
from portmatrix.policy.matrix import load_matrix
from portmatrix.sources.capture import Capture
from portmatrix.watch.drops import DropMeter
from portmatrix.watch.state import StateFile
from portmatrix.watch.watcher import Watcher

state, capture, inventory = sys.argv[1:]
matrix = load_matrix(["thoughtspot"])
w = Watcher(matrix, load_inventory(inventory, matrix))
for raw in Capture(capture).batches():
    w.add(*decode(raw))
w.tick(w.last_ts + 200 * 10**9)
write = files.Staged.write_text

def half_then_wait(self, path, text, option="--output"):
    with self.open(path, option=option) as fh:
        fh.write(text[: len(text) // 2])
        fh.flush()
        os.fsync(fh.fileno())
        print("half", flush=True)
        sys.stdin.read()  # until killed

files.Staged.write_text = half_then_wait
StateFile(state).save(w, DropMeter(["eth0"], None, 0))
"""


def test_a_writer_killed_half_way_leaves_the_old_state(tmp_path):
    # a real kill (SIGKILL: no handler, no cleanup) in the middle of the write
    import signal
    import subprocess
    import sys

    path = tmp_path / "state.json"
    first = watched()
    StateFile(str(path)).save(first, meter(5))
    old = path.read_bytes()
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILLED_HALF_WAY,
            str(path),
            str(paths.DEMO),
            str(paths.DEMO_INVENTORY),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline() == "half\n"
        (part,) = [p for p in tmp_path.iterdir() if p.name != "state.json"]
        assert 0 < part.stat().st_size < len(old)  # the new state, half written
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(30) == -signal.SIGKILL
    finally:
        writer.kill()
        writer.wait()
    assert path.read_bytes() == old
    again = watcher()
    assert StateFile(str(path)).load(again) and again.announced == first.announced


def test_no_file_yet_is_a_fresh_start(tmp_path):
    assert StateFile(str(tmp_path / "none.json")).load(watcher()) is False


@pytest.mark.parametrize(
    ("doc", "what"),
    [
        ([1, 2], "no state mark in it"),
        ({"portmatrix-watch-state": 9}, "a state of version 9; this portmatrix reads 1"),
        ({"portmatrix-watch-state": 1, "matrix": "other"}, "saved by a watch of matrix 'other'"),
    ],
)
def test_a_state_of_something_else_is_refused(tmp_path, doc, what):
    path = tmp_path / "state.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(PortmatrixError, match="start afresh") as err:
        StateFile(str(path)).load(watcher())
    assert what in err.value.what and err.value.where == "--state"


def test_a_damaged_state_is_refused_not_half_restored(tmp_path):
    path = tmp_path / "state.json"
    StateFile(str(path)).save(watched(), meter())
    doc = json.loads(path.read_text())
    doc["findings"][next(iter(doc["findings"]))]["hosts"] = "not base64 at all!"
    path.write_text(json.dumps(doc))
    with pytest.raises(PortmatrixError, match="damaged state"):
        StateFile(str(path)).load(watcher())
