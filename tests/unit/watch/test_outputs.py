"""Where a running watch writes: stamped lines, ECS records, files reopened for
log rotation, and a write that fails said once without stopping the watch."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import replace

import pytest

from portmatrix.errors import PortmatrixError
from portmatrix.times import stamp
from portmatrix.watch.outputs import LineFile, Outputs
from portmatrix.watch.watcher import Event


def test_stamp_is_iso_8601_utc_to_the_second():
    when = dt.datetime(2025, 1, 31, 10, 0, 5, 999999, tzinfo=dt.UTC)
    assert stamp(when) == "2025-01-31T10:00:05Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp())


def test_a_line_file_appends_and_reopens(tmp_path):
    path = tmp_path / "w.log"
    path.write_text("from before\n")
    f = LineFile(str(path), "--log")
    f.write("one")
    path.rename(tmp_path / "w.log.1")
    f.write("two")  # still into the moved file, until reopened
    f.reopen()
    f.write("three")
    f.close()
    assert (tmp_path / "w.log.1").read_text() == "from before\none\ntwo\n"
    assert path.read_text() == "three\n"
    assert f.lines == 3


def test_a_line_file_that_cannot_be_opened_is_one_error(tmp_path):
    with pytest.raises(PortmatrixError, match="cannot open") as err:
        LineFile(str(tmp_path / "no" / "w.log"), "--log")
    assert err.value.where == "--log"


def test_an_event_goes_everywhere_with_its_reason(tmp_path, demo_watch):
    _, events = demo_watch
    said, sent = [], []
    jsonl = LineFile(str(tmp_path / "f.jsonl"), "--jsonl")

    class Syslog:
        def send(self, record):
            sent.append(record)

    out = Outputs(said.append, jsonl=jsonl, syslog=Syslog(), ifaces=["eth0"])
    finding = events[0].finding
    out.event(Event("new", finding), "thoughtspot", "2024-03-01T10:00:00Z")
    out.event(Event("recovered", replace(finding, severity="info")), "thoughtspot", None)
    jsonl.close()
    records = [json.loads(x) for x in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert [r["event"]["reason"] for r in records] == ["new", "recovered"]
    assert records[0]["event"]["kind"] == "alert"
    assert (records[1]["event"]["kind"], records[1]["event"]["type"]) == ("event", ["end"])
    assert records[0]["observer"]["ingress"]["interface"]["name"] == "eth0"
    assert sent == records
    assert re.match(r"\S+Z NEW ", said[0]) and re.match(r"\S+Z RECOVERED info ", said[1])


def test_a_failing_output_is_said_once_and_watching_goes_on(demo_watch):
    _, events = demo_watch
    said = []
    full = LineFile("/dev/full", "--jsonl")  # every write: no space left on device
    out = Outputs(said.append, jsonl=full)
    for e in events[:3]:
        out.event(e, "thoughtspot", None)
    warnings = [x for x in said if "warning: cannot write to --jsonl" in x]
    assert len(warnings) == 1 and "No space left on device" in warnings[0]
    assert len([x for x in said if " NEW " in x]) == 3  # the terminal still has them all
