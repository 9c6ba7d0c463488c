"""portmatrix in a real (pseudo-)terminal, as a person runs it: the installed
console script, its width, colour, progress bar, live lines and Ctrl-C.

Every path that depends on a terminal is here, because CliRunner is never one
(the first round's README command crashed on every terminal and no test saw it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from support import golden
from support.fake_dumpcap import alive, fake_dumpcap
from support.paths import CAPTURES, REPO
from support.terminal import PORTMATRIX, ctrl_c_after, run_in_pty

DEMO = "captures/thoughtspot-demo.pcap"
DEMO_INVENTORY = "captures/thoughtspot-demo.inventory.yaml"
CHECK = ("check", DEMO, "--rules", "thoughtspot", "--inventory", DEMO_INVENTORY)
ESC = "\x1b["


def test_the_readmes_first_command_in_a_terminal():
    run = run_in_pty(*golden.README_COMMAND)
    assert run.status == 1, run.text
    assert "Traceback" not in run.text
    assert ESC in run.output  # colour on a terminal
    # What the terminal shows is the README's block, line for line.
    shown = [line.rstrip() for line in run.text.strip("\n").split("\n")]
    assert shown == golden.readme_block().rstrip("\n").split("\n")


def test_no_color_is_honoured_on_a_terminal():
    run = run_in_pty(*CHECK, env={"NO_COLOR": "1"})
    assert run.status == 1
    assert ESC not in run.output and "Required services" in run.text


def test_force_color_colours_a_pipe():
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    piped = subprocess.run(
        [str(PORTMATRIX), *CHECK], capture_output=True, text=True, cwd=REPO, env=env
    )
    assert ESC not in piped.stdout
    forced = subprocess.run(
        [str(PORTMATRIX), *CHECK],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**env, "FORCE_COLOR": "1"},
    )
    assert ESC in forced.stdout


def test_the_report_takes_the_terminals_width():
    narrow = run_in_pty(*CHECK, columns=80)
    wide = run_in_pty(*CHECK, columns=120)
    assert max(len(line) for line in narrow.text.split("\n")) <= 80
    assert 80 < max(len(line) for line in wide.text.split("\n")) <= 120


@pytest.mark.parametrize(
    ("args", "status", "expect"),
    [
        (("flows", DEMO), 0, "40 flows from 268 frames"),
        (("rules", "show", "thoughtspot", "--role", "admins"), 0, "ssh-from-admins"),
        (("rules", "lint", "thoughtspot"), 0, "0 problem(s) in thoughtspot (bundled)"),
        (("check", DEMO, "--rules", "thoughtspot"), 1, "roles with no address"),
        (("--version",), 0, "compiled helpers"),
        (("check", "--help"), 0, "Exit status: 0"),
    ],
)
def test_every_text_output_in_a_terminal(args, status, expect):
    run = run_in_pty(*args)
    assert run.status == status, run.text
    assert expect in " ".join(run.text.split())
    assert "Traceback" not in run.text


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("check", DEMO, "--rules", "thoughtspot", "--role", "admin"), "did you mean admins?"),
        (("check", DEMO, "--rule", "thoughtspot"), "No such option '--rule'"),
        (("check", DEMO, "--rules", "thoughtspot", "--since", "yesterday"), "is not a time"),
        (("flows", "captures/"), "flows from"),  # a folder with YAML beside the captures
    ],
)
def test_mistakes_in_a_terminal_get_one_line(args, line):
    run = run_in_pty(*args)
    assert line in run.text
    if "flows from" not in line:
        assert run.status == 2
        assert run.text.strip().count("\n") == 0, run.text
        assert run.text.startswith("portmatrix: error: ")


@pytest.fixture(scope="module")
def large_capture(tmp_path_factory) -> Path:
    """A capture that takes well over the bar's half second to read, on a fast
    machine too: 2.5 million packets (about 1.5 s), gzip-compressed so that the
    file stays small."""
    path = tmp_path_factory.mktemp("large") / "large.pcap"
    subprocess.run(
        [sys.executable, "benchmarks/gen_capture.py", str(path), "--packets", "2500000"],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    subprocess.run(["gzip", "-1", str(path)], check=True)
    return path.with_suffix(".pcap.gz")


def test_progress_bar_on_a_large_capture(large_capture):
    inventory = REPO / "benchmarks" / "site.inventory.yaml"
    args = ("check", str(large_capture), "--rules", "thoughtspot", "--inventory", str(inventory))
    report = large_capture.parent / "large.json"
    run = run_in_pty(*args, "-o", str(report))
    assert run.status == 1, run.text
    assert "reading" in run.text  # the bar
    assert "labelling flows" in run.text  # ... and at once the labels' second read's
    assert "portmatrix: wrote" in run.text
    quiet = run_in_pty(*args, "-q", "-o", str(report))
    assert "reading" not in quiet.text and "wrote" not in quiet.text


def test_evidence_shows_both_of_its_passes(large_capture):
    inventory = REPO / "benchmarks" / "site.inventory.yaml"
    out = large_capture.parent / "ev.pcapng"
    run = run_in_pty(
        "evidence",
        str(large_capture),
        "--rules",
        "thoughtspot",
        "--inventory",
        str(inventory),
        "--verdict",
        "unexpected-port",
        "-o",
        str(out),
    )
    assert run.status == 0, run.text
    assert "choosing flows" in run.text and "extracting" in run.text  # two bars
    assert f"portmatrix: wrote {out}: " in run.text


def test_ctrl_c_half_way_writes_no_report(tmp_path):
    """A capture arriving on a FIFO that never ends: the read is half way for
    certain when Ctrl-C is pressed."""
    fifo = tmp_path / "stream.pcap"
    os.mkfifo(fifo)
    demo = (CAPTURES / "thoughtspot-demo.pcap").read_bytes()
    opened = threading.Event()
    release = threading.Event()

    def feed() -> None:
        with open(fifo, "wb") as fh:  # blocks until portmatrix opens it
            fh.write(demo)
            fh.flush()
            opened.set()
            release.wait(60)

    threading.Thread(target=feed, daemon=True).start()
    report = tmp_path / "report.json"

    def press_once_reading(type_keys) -> None:
        if opened.is_set() and not getattr(press_once_reading, "done", False):
            press_once_reading.done = True
            type_keys(b"\x03")

    try:
        run = run_in_pty(
            "check", str(fifo), "--rules", "thoughtspot", "-o", str(report), idle=press_once_reading
        )
    finally:
        release.set()
    assert run.status == 130, run.text
    assert "portmatrix: interrupted — no report was written" in run.text
    assert "Traceback" not in run.text
    assert not report.exists() and not list(tmp_path.glob(".report.json*"))


def test_watch_live_lines_and_final_report_in_a_terminal(tmp_path):
    dumpcap, pids = fake_dumpcap(tmp_path, CAPTURES / "thoughtspot-demo.pcap")
    args = ("watch", "-i", "lo", "--dumpcap", str(dumpcap), "--rules", "thoughtspot")
    run = run_in_pty(
        *args, "--inventory", DEMO_INVENTORY, "--duration", "3s", "--report-every", "1s"
    )
    assert run.status == 1, run.text
    text = run.text
    assert "portmatrix: watching lo" in text
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"  # every live line says when, in UTC
    assert re.search(rf"(?m)^{stamp} NEW error wrong-direction 10.20.0.11 → 10.30.0.5 tcp/22", text)
    assert re.search(
        rf"(?m)^{stamp} 268 packets \([\d,]+/s, .*; flows: .*; dropped 0 \(\+0\)", text
    )
    assert "Required services" in text and ESC in run.output  # the final report, coloured
    assert re.search(r"(?m)^portmatrix \S+ watch — matrix thoughtspot", text)  # not "check"
    assert alive(pids) == []


def test_ctrl_c_stops_watch_with_its_report(tmp_path):
    dumpcap, pids = fake_dumpcap(tmp_path, CAPTURES / "thoughtspot-demo.pcap")
    run = run_in_pty(
        "watch",
        "-i",
        "lo",
        "--dumpcap",
        str(dumpcap),
        "--rules",
        "thoughtspot",
        "--inventory",
        DEMO_INVENTORY,
        on_output=ctrl_c_after("NEW error"),
    )
    assert run.status == 1, run.text  # stopped by the person: the report, exit by findings
    assert "Required services" in run.text and "Traceback" not in run.text
    assert alive(pids) == []
