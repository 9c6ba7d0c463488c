"""Live capture's plumbing around dumpcap, with a stand-in dumpcap (a script) so it
runs without capture privileges: finding it, reading `dumpcap -D`, turning its
failures into errors with the fix, streaming its pcapng, its ring. Capturing for
real on the loopback is tests/live's job."""

from __future__ import annotations

import os
import time

import pytest
from scapy.layers.inet import UDP

from portmatrix.errors import CaptureSetupError
from portmatrix.sources import live
from portmatrix.sources.live import (
    DumpcapCapture,
    find_dumpcap,
    interfaces,
    kernel_drops,
    open_live,
    start_ring,
)
from portmatrix.testing.captures import Pcapng, ether, ip
from support.fake_dumpcap import exiting_dumpcap


@pytest.fixture
def fake_dumpcap(tmp_path):
    """`fake_dumpcap(capture=b"", stderr="", status=0)`: support.fake_dumpcap's exiting stand-in
    in tmp_path (its arguments land in tmp_path/args.txt)."""

    def make(capture: bytes = b"", stderr: str = "", status: int = 0) -> str:
        return exiting_dumpcap(tmp_path, capture, stderr, status)

    return make


def pcapng(count: int) -> bytes:
    w = Pcapng()
    w.interface(1, name="eth0")
    w.packets(
        [ether(ip("10.0.0.1", "10.0.0.2") / UDP(sport=4000 + i, dport=53)) for i in range(count)]
    )
    return w.bytes()


def test_find_dumpcap(tmp_path, fake_dumpcap, monkeypatch):
    exe = fake_dumpcap()
    assert find_dumpcap(exe) == exe
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_dumpcap() == exe
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert find_dumpcap() is None
    plain = tmp_path / "notes.txt"
    plain.write_text("x")
    with pytest.raises(CaptureSetupError, match="not an executable dumpcap") as err:
        find_dumpcap(str(plain))
    assert err.value.file == str(plain) and "tshark" in err.value.hint


def test_interfaces_are_read_from_the_listing(fake_dumpcap):
    assert interfaces(fake_dumpcap()) == ["eth0", "lo", "any"]


def test_a_capture_on_an_interface_dumpcap_does_not_list_is_refused(fake_dumpcap):
    with pytest.raises(CaptureSetupError, match="unknown interface 'wlan9'") as err:
        DumpcapCapture(["wlan9"], dumpcap=fake_dumpcap())
    assert err.value.where == "-i" and err.value.hint == "interfaces: eth0, lo, any"


def test_dumpcap_stream_is_read_as_batches(fake_dumpcap, tmp_path):
    exe = fake_dumpcap(capture=pcapng(5))
    capture = DumpcapCapture(["eth0", "lo"], bpf="udp port 53", dumpcap=exe, buffer_mb=64)
    frames = sum(len(batch) for batch in capture.batches())
    assert frames == 5 and capture.info.frames == 5
    assert capture.info.path == "dumpcap:eth0,lo" and capture.info.format == "pcapng"
    args = (tmp_path / "args.txt").read_text().splitlines()
    assert args[-1] == "-q -w - -i eth0 -i lo -f udp port 53 -B 64"
    capture.proc.wait(timeout=10)
    assert capture.died == ""  # exit status 0: the capture ended, nothing died


def test_dumpcap_that_cannot_capture_says_how_to_fix_it(fake_dumpcap):
    exe = fake_dumpcap(stderr="You do not have permission to capture on that device", status=1)
    with pytest.raises(CaptureSetupError, match="no permission to capture") as err:
        DumpcapCapture(["eth0"], dumpcap=exe)
    assert "usermod -aG wireshark" in err.value.hint
    other = fake_dumpcap(stderr="The capture filter is not valid", status=1)
    with pytest.raises(CaptureSetupError, match="capture failed: The capture filter") as err:
        DumpcapCapture(["eth0"], dumpcap=other)
    assert err.value.hint == "check the interface and the capture filter"


def test_dumpcap_dying_mid_capture_says_why_unless_we_stopped_it(fake_dumpcap):
    exe = fake_dumpcap(capture=pcapng(2), stderr="interface went down", status=2)
    capture = DumpcapCapture(["eth0"], dumpcap=exe)
    assert sum(len(batch) for batch in capture.batches()) == 2
    capture.proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while not capture.died.startswith("interface") and time.monotonic() < deadline:
        time.sleep(0.02)  # stderr is drained by a thread
    assert capture.died == "dumpcap ended on its own (exit status 2): interface went down"
    capture.stop()
    assert capture.died == ""


def test_open_live_takes_dumpcap_when_there_is_one(fake_dumpcap):
    capture, warning = open_live(["lo"], None, fake_dumpcap(capture=pcapng(1)), None)
    assert isinstance(capture, DumpcapCapture) and warning == ""
    capture.kill()


def test_ring_runs_its_own_dumpcap_with_the_ring_options(fake_dumpcap, tmp_path):
    exe = fake_dumpcap()
    folder = tmp_path / "ring"
    ring = start_ring(["eth0"], "tcp", exe, str(folder), files=4, size_mb=10)
    ring.proc.wait(timeout=10)
    ring.stop()
    assert folder.is_dir()
    args = (tmp_path / "args.txt").read_text().split()
    assert args == [
        "-q",
        "-w",
        str(folder / "portmatrix.pcapng"),
        "-b",
        "filesize:10000",
        "-b",
        "files:4",
        "-i",
        "eth0",
        "-f",
        "tcp",
    ]


def test_ring_needs_dumpcap_and_a_folder_it_can_make(fake_dumpcap, tmp_path, monkeypatch):
    monkeypatch.setattr(live, "find_dumpcap", lambda explicit=None: None)
    with pytest.raises(CaptureSetupError, match="--ring needs dumpcap"):
        start_ring(["eth0"], None, None, str(tmp_path / "r"), 2, 1)
    monkeypatch.undo()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CaptureSetupError, match="is a file, not a folder") as err:
        start_ring(["eth0"], None, fake_dumpcap(), str(blocker / "ring"), 2, 1)
    assert err.value.where == "--ring"


def test_kernel_drops_reads_the_interfaces_counters():
    counter = "/sys/class/net/lo/statistics/rx_dropped"
    if not os.path.exists(counter):
        pytest.skip("no Linux interface counters here")
    with open(counter) as fh:
        expected = int(fh.read())
    assert kernel_drops(["lo", "no-such-interface"]) >= expected  # counters only grow
    assert kernel_drops(["no-such-interface"]) == 0
    assert kernel_drops([]) == 0
