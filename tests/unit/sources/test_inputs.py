"""The inputs a command was given: files, folders and globs, and their total size."""

from __future__ import annotations

import pytest

from portmatrix.errors import CaptureError
from portmatrix.sources.inputs import expand_inputs, skipped_notice, total_size
from portmatrix.testing.captures import Pcapng, gzipped, write_pcap
from support.packets import udp_frames


def test_expand_inputs(tmp_path, monkeypatch):
    d = tmp_path / "caps"
    d.mkdir()
    write_pcap(d / "b.pcap", udp_frames(1))
    (d / "a.pcapng").write_bytes(Pcapng().section().bytes())
    (d / ".hidden").write_bytes(b"")
    (d / "sub").mkdir()
    monkeypatch.chdir(tmp_path)

    assert expand_inputs([str(d)]) == [str(d / "a.pcapng"), str(d / "b.pcap")]
    assert expand_inputs(["caps/*.pcap"]) == ["caps/b.pcap"]
    assert expand_inputs([str(d / "*.pcap*")]) == [str(d / "a.pcapng"), str(d / "b.pcap")]
    assert expand_inputs(["-", "caps/b.pcap"]) == ["-", "caps/b.pcap"]
    with pytest.raises(CaptureError, match="no file matches"):
        expand_inputs(["caps/*.cap"])
    with pytest.raises(CaptureError, match="no such file"):
        expand_inputs(["caps/missing.pcap"])
    with pytest.raises(CaptureError, match="holds no files"):
        expand_inputs([str(d / "sub")])


def test_folders_and_globs_take_captures_and_skip_the_rest(tmp_path):
    """A forensics folder holds notes, a README and evidence sidecars beside the
    captures: those are skipped (and listed), never an error; a file named
    explicitly is read whatever it is."""
    d = tmp_path / "case-42"
    d.mkdir()
    write_pcap(d / "a.pcap", udp_frames(1))
    gzipped(write_pcap(d / "b.pcap", udp_frames(1)), d / "b.pcap.gz")
    (d / "b.pcap").unlink()
    (d / "README").write_text("notes\n")
    (d / "evidence.pcapng.json").write_text("{}")
    gzipped(d / "README", d / "old-notes.gz")
    found = expand_inputs([str(d)])
    assert found == [str(d / "a.pcap"), str(d / "b.pcap.gz")]
    assert found.skipped == [
        str(d / "README"),
        str(d / "evidence.pcapng.json"),
        str(d / "old-notes.gz"),
    ]
    assert "3 file(s)" in skipped_notice(found) and "README" in skipped_notice(found)
    assert expand_inputs([str(d / "*")]).skipped == found.skipped
    assert expand_inputs([str(d / "README")]) == [str(d / "README")]  # named: read, and fail
    assert skipped_notice(expand_inputs([str(d / "a.pcap")])) == ""
    only_notes = tmp_path / "notes"
    only_notes.mkdir()
    (only_notes / "x.txt").write_text("x")
    with pytest.raises(CaptureError, match="no capture among its 1 file"):
        expand_inputs([str(only_notes)])


def test_evidence_extracts_in_a_folder_are_not_read_twice(tmp_path, run_cli):
    """`evidence` writes a pcapng of packets the captures already hold: a folder
    holding both would count them twice."""
    from support.paths import CAPTURES

    d = tmp_path / "case"
    d.mkdir()
    demo = d / "demo.pcap"
    demo.write_bytes((CAPTURES / "thoughtspot-demo.pcap").read_bytes())
    made = run_cli(
        "evidence", demo, "--flow", "tcp 10.30.0.5:52323 -> 10.20.0.11:22", "-o", d / "ev.pcapng"
    )
    assert made.exit_code == 0, made.stderr
    found = expand_inputs([str(d)])
    assert found == [str(demo)]
    assert found.extracts == [str(d / "ev.pcapng")]
    assert found.skipped == [str(d / "ev.pcapng.json")]
    notice = skipped_notice(found)
    assert "1 file(s) are evidence extracts of the captures beside them" in notice
    assert expand_inputs([str(d / "ev.pcapng")]) == [str(d / "ev.pcapng")]  # named: read


def test_total_size_counts_the_files_on_disk(tmp_path):
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    a.write_bytes(bytes(100))
    b.write_bytes(bytes(23))
    assert total_size([str(a), str(b)]) == 123
    # Standard input has no size; a file gone since expansion counts nothing.
    assert total_size(["-", str(a), str(tmp_path / "gone.pcap")]) == 100
    assert total_size([]) == 0
