"""contrib/: the files that run `watch` as a service, checked by the tools that
read them — systemd's own verifier, logrotate rotating the files of a running
watch, and watch reading the example configuration."""

from __future__ import annotations

import json
import re
import subprocess
import time

from support import tools
from support.fake_dumpcap import paced_dumpcap
from support.live_traffic import service_stops
from support.paths import REPO
from support.terminal import PORTMATRIX

CONTRIB = REPO / "contrib"
UNIT = CONTRIB / "portmatrix-watch.service"
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "


def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    verify = tools.program("systemd-analyze", "apt-get install systemd")
    # verify also checks that ExecStart= is executable: point it at this checkout's.
    unit = tmp_path / UNIT.name
    unit.write_text(
        UNIT.read_text().replace("/opt/portmatrix/.venv/bin/portmatrix", str(PORTMATRIX))
    )
    result = subprocess.run([verify, "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # not even a warning


def test_the_unit_runs_unprivileged_and_hardened():
    text = UNIT.read_text()
    settings = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#"
    )
    assert settings["User"] == settings["Group"] == "portmatrix"
    assert settings["AmbientCapabilities"] == "CAP_NET_RAW CAP_NET_ADMIN"
    assert settings["CapabilityBoundingSet"] == settings["AmbientCapabilities"]
    assert settings["ProtectSystem"] == "strict" and settings["NoNewPrivileges"] == "yes"
    assert settings["Restart"] == "on-failure"
    assert settings["ExecReload"] == "/bin/kill -HUP $MAINPID"  # logrotate's reload
    assert "--config /etc/portmatrix/watch.toml" in settings["ExecStart"]


def test_the_units_security_exposure_is_low(tmp_path):
    analyze = tools.program("systemd-analyze", "apt-get install systemd")
    unit = tmp_path / UNIT.name
    unit.write_text(
        UNIT.read_text().replace("/opt/portmatrix/.venv/bin/portmatrix", str(PORTMATRIX))
    )
    result = subprocess.run(
        [analyze, "security", "--offline=yes", str(unit)], capture_output=True, text=True
    )
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout + result.stderr)
    assert level and float(level[1]) < 3.0, result.stdout[-2000:]  # "OK" in systemd's words


def test_the_example_configuration_is_read_as_it_says(run_cli):
    result = run_cli("watch", "--config", str(CONTRIB / "watch.toml"), "--print-config")
    assert result.exit_code == 0, result.stderr
    shown = dict(
        line.split(" = ", 1) for line in result.stdout.splitlines() if not line.startswith("#")
    )
    assert shown["interface"] == '["eth1"]'
    assert shown["state"] == '"/var/lib/portmatrix/state.json"'
    assert shown["metrics-address"] == '"127.0.0.1"'
    unit_dirs = {"/var/lib/portmatrix", "/var/log/portmatrix"}  # what the unit may write
    written = {json.loads(shown[k]).rsplit("/", 1)[0] for k in ("state", "jsonl", "log")}
    assert written <= unit_dirs


def test_logrotate_rotates_a_running_watch_and_no_line_is_lost(tmp_path, site):
    """The snippet as logrotate runs it (paths, user and the reload adapted to the
    test), on a watch writing its JSON lines and its log."""
    logrotate = tools.program("logrotate", "apt-get install logrotate")
    capture = tmp_path / "t.pcap"
    from portmatrix.testing.captures import write_pcap

    write_pcap(capture, [f for second in service_stops(6, gap=(1, 6)) for f in second])
    dumpcap, _ = paced_dumpcap(tmp_path, capture)
    logs = tmp_path / "log"
    logs.mkdir()
    paths = site("small")
    proc = subprocess.Popen(
        [
            str(PORTMATRIX),
            *("watch", "-i", "eth0", "--dumpcap", str(dumpcap)),
            *("--rules", str(paths.matrix), "--inventory", str(paths.inventory)),
            *("--coverage-window", "1s", "--report-every", "0.5", "--duration", "5s"),
            *("--jsonl", str(logs / "findings.jsonl"), "--log", str(logs / "watch.log")),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    snippet = (CONTRIB / "portmatrix-watch.logrotate").read_text()
    snippet = snippet.replace("/var/log/portmatrix", str(logs))
    snippet = re.sub(r"create 0640 portmatrix portmatrix", "create 0640", snippet)
    snippet = snippet.replace("systemctl reload portmatrix-watch.service", f"kill -HUP {proc.pid}")
    config = tmp_path / "logrotate.conf"
    config.write_text(snippet)
    deadline = time.monotonic() + 20
    while "NEW" not in (logs / "watch.log").read_text() if (logs / "watch.log").exists() else True:
        assert time.monotonic() < deadline, "watch wrote nothing"
        time.sleep(0.05)
    rotate = subprocess.run(
        [logrotate, "--force", "--state", str(tmp_path / "state"), str(config)],
        capture_output=True,
        text=True,
    )
    assert rotate.returncode == 0, rotate.stderr
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    stamped = [x for x in err.splitlines() if re.match(STAMP, x)]
    moved = (logs / "watch.log.1").read_text().splitlines()
    new = (logs / "watch.log").read_text().splitlines()
    assert moved and new and moved + new == stamped
    told = [x for x in stamped if re.match(STAMP + "(NEW|WORSE|RECOVERED) ", x)]
    events = (logs / "findings.jsonl.1").read_text().splitlines()
    events += (logs / "findings.jsonl").read_text().splitlines()
    assert len(events) == len(told)
