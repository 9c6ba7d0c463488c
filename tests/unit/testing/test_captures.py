"""The capture builder is public API (docs/testing-your-matrix.md): its example
runs as written. (tests/conformance checks tshark reads what it builds.)"""

from __future__ import annotations

import re

import pytest

from portmatrix.testing.captures import tcp_session
from support.paths import REPO
from support.site import write_site

DOC = REPO / "docs" / "testing-your-matrix.md"


def test_the_documented_example_runs(tmp_path, monkeypatch):
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    site = write_site(tmp_path)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "inventory.yaml").write_text(
        "roles:\n  nodes: [10.20.0.11-10.20.0.16]\n  admins: [10.30.0.5]\n"
    )
    (tmp_path / "site" / "exceptions.yaml").write_text(
        "name: site\nexceptions:\n  - id: backup-ssh\n    from: [10.9.9.9]\n    to: nodes\n"
        "    proto: tcp\n    ports: 22\n    reason: nightly backup pulls over scp\n"
    )
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    namespace["test_backup_may_pull_over_ssh"](tmp_path)
    assert site.matrix.exists()


def test_a_session_is_what_it_says(tmp_path):
    packets = tcp_session("10.0.0.1", "10.0.0.2", 40000, 22, data=[b"a", b"bc"])
    flags = [str(p["TCP"].flags) for p in packets]
    assert flags == ["S", "SA", "A", "PA", "A", "PA", "A", "FA", "FA", "A"]
    with pytest.raises(ValueError, match="close must be"):
        tcp_session("10.0.0.1", "10.0.0.2", 1, 2, close="slam")
