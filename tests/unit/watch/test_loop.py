"""The watch loop with a stand-in live source (no capture privileges needed)."""

from __future__ import annotations

import json

from portmatrix.policy.inventory import load_inventory
from portmatrix.policy.matrix import load_matrix
from portmatrix.sources.capture import Capture
from portmatrix.watch.loop import Outputs, run_watch
from portmatrix.watch.watcher import Watcher
from support import paths

DEMO, DEMO_INVENTORY = str(paths.DEMO), str(paths.DEMO_INVENTORY)


class FileSource:
    """A capture file standing in for a live interface."""

    ifaces: list[str] = []  # noqa: RUF012 - no interfaces: no kernel drop counters

    def __init__(self, path: str, died: str = "") -> None:
        self.capture = Capture(path)
        self.info = self.capture.info
        self.died = died
        self.stopped = False

    def batches(self):
        yield from self.capture.batches()

    def stop(self) -> None:
        self.stopped = True

    def kill(self) -> None:
        pass


def watch(tmp_path, source, **options):
    matrix = load_matrix(["thoughtspot"])
    watcher = Watcher(matrix, load_inventory(DEMO_INVENTORY, matrix))
    lines: list[str] = []
    jsonl = tmp_path / "findings.jsonl"
    with open(jsonl, "a", encoding="utf-8") as out:
        result, failure = run_watch(
            source,
            watcher,
            Outputs(lines.append, out),
            duration=options.get("duration"),
            report_every=0.0,
        )
    return result, failure, lines, [json.loads(x) for x in jsonl.read_text().splitlines()]


def test_every_finding_is_announced_once_in_lines_and_json_lines(tmp_path):
    result, failure, lines, records = watch(tmp_path, FileSource(DEMO))
    assert failure == ""
    ids = [r["event"]["id"] for r in records]
    assert len(ids) == len(set(ids)) == len(result.findings)
    assert set(ids) == {f.id for f in result.findings}
    news = [line for line in lines if line.startswith("NEW ")]
    assert len(news) == len(result.findings)
    assert any("packets; flows:" in line and "findings:" in line for line in lines)  # summaries
    assert result.verdict_counts()["unexpected-port"] == 3
    assert result.traffic.captures[0].path == DEMO
    assert {r["event"]["reason"] for r in records} == {"new"}


def test_a_capture_that_dies_is_reported_with_what_was_seen(tmp_path):
    result, failure, _, _ = watch(tmp_path, FileSource(DEMO, died="dumpcap: killed"))
    assert failure == "dumpcap: killed"
    assert sum(result.verdict_counts().values()) == 40
