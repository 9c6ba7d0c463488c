"""watch --config: every option from a TOML file, the command line overriding
it, --print-config showing (and reading back) the merged result, and each
mistake in the file one line naming the file, the line and the key."""

from __future__ import annotations

import textwrap

import click
import pytest

from portmatrix.cli import main
from portmatrix.watch.config import keys
from support.paths import REPO

CONFIG = """\
interface = "eth1"
rules = ["thoughtspot", "/etc/portmatrix/site.yaml"]
inventory = "/etc/portmatrix/inventory.yaml"
filter = "not port 22"
report-every = "5m"
coverage_window = 900
jsonl = "/var/log/portmatrix/findings.jsonl"
metrics-port = 9107
state = "/var/lib/portmatrix/state.json"
scan-ports = 30
"""


def write(tmp_path, text: str):
    path = tmp_path / "watch.toml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def shown(result) -> dict[str, str]:
    return dict(
        line.split(" = ", 1) for line in result.stdout.splitlines() if not line.startswith("#")
    )


def test_every_watch_option_can_be_in_the_file():
    watch = main.commands["watch"]
    options = {p.name for p in watch.params if isinstance(p, click.Option)}
    assert {p.name for p in keys(watch).values()} == options - {"config", "print_config"}


def test_the_file_gives_the_options_and_print_config_shows_them(run_cli, tmp_path):
    result = run_cli("watch", "--config", write(tmp_path, CONFIG), "--print-config")
    assert result.exit_code == 0, result.stderr
    got = shown(result)
    assert got["interface"] == '["eth1"]'  # one value of a repeatable option: a list of one
    assert got["rules"] == '["thoughtspot", "/etc/portmatrix/site.yaml"]'
    assert got["report-every"] == '"5m"' and got["coverage-window"] == '"15m"'
    assert got["metrics-port"] == "9107" and got["scan-ports"] == "30"
    assert got["idle-timeout"] == '"2m"'  # defaults too
    assert got["metrics-address"] == '"127.0.0.1"'
    assert "# duration =" in result.stdout  # no value: shown commented out


def test_the_command_line_wins(run_cli, tmp_path):
    path = write(tmp_path, CONFIG)
    result = run_cli(
        "watch", "--config", path, "-i", "eth2", "--report-every", "10s", "--print-config"
    )
    got = shown(result)
    assert got["interface"] == '["eth2"]' and got["report-every"] == '"10s"'
    assert got["jsonl"] == '"/var/log/portmatrix/findings.jsonl"'  # the rest from the file


def test_print_config_reads_back_the_same(run_cli, tmp_path):
    first = run_cli("watch", "--config", write(tmp_path, CONFIG), "--print-config")
    (tmp_path / "again.toml").write_text(first.stdout)
    again = run_cli("watch", "--config", str(tmp_path / "again.toml"), "--print-config")
    assert again.exit_code == 0, again.stderr
    assert shown(again) == shown(first)


def test_without_a_config_the_required_options_are_still_required(run_cli):
    result = run_cli("watch", "--print-config")
    assert result.exit_code == 2 and "Missing option '-i'" in result.stderr


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            'interface = "eth1"\nrules = "thoughtspot"\nreport_evry = "1m"\n',
            "watch.toml:line 3:report_evry: not a watch option — did you mean report-every?",
        ),
        (
            'interface = "eth1"\nrules = "thoughtspot"\nreport-every = "soon"\n',
            "watch.toml:line 3:report-every: 'soon' is not a duration",
        ),
        (
            'interface = "eth1"\nrules = "thoughtspot"\nmetrics-port = 70000\n',
            "watch.toml:line 3:metrics-port: 70000 is not in the range 1<=x<=65535",
        ),
        (
            'interface = "eth1"\nrules = "thoughtspot"\nfail-on = "eror"\n',
            "watch.toml:line 3:fail-on: 'eror' is not one of error, warning, never — did you "
            "mean error?",
        ),
        ('interface = "eth1"\nduration = ["1m", "2m"]\n', "watch.toml:line 2:duration: needs one"),
        ("interface = eth1\n", "watch.toml: not valid TOML: Invalid value (at line 1, column 13)"),
    ],
)
def test_a_mistake_in_the_file_is_one_line(run_cli, tmp_path, text, error):
    result = run_cli("watch", "--config", write(tmp_path, text), "--print-config")
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("portmatrix: error: ") and error in line, line


def test_a_missing_file_is_one_line(run_cli, tmp_path):
    result = run_cli("watch", "--config", str(tmp_path / "nope.toml"), "--print-config")
    assert result.exit_code == 2
    assert result.stderr == (
        f"portmatrix: error: {tmp_path / 'nope.toml'}:--config: cannot read: No such file or "
        "directory — check the path\n"
    )


def test_every_option_is_in_the_service_guide():
    """docs/watch.md lists what a configuration file may hold: every watch option."""
    guide = (REPO / "docs" / "watch.md").read_text(encoding="utf-8")
    missing = [key for key in keys(main.commands["watch"]) if f"`--{key}" not in guide]
    assert missing == []
