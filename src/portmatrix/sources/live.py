"""Live capture: dumpcap (Wireshark's capture engine) writing pcapng to a pipe that
the same streaming reader as `check` consumes; scapy's sniffer where dumpcap is
missing.

Errors a user can fix — an unknown interface, no permission to capture, no
dumpcap — are CaptureSetupErrors with the fix in the hint.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator

import numpy as np

from portmatrix.decode.batch import RawBatch
from portmatrix.errors import CaptureSetupError
from portmatrix.sources.base import CaptureInfo, Interface
from portmatrix.sources.capture import Capture

PERMISSION_HINT = (
    "run as root, or let your user capture: sudo dpkg-reconfigure "
    "wireshark-common (answer yes), sudo usermod -aG wireshark $USER, log in "
    "again"
)


def _die_with_parent() -> None:
    """In a child, before exec: its own process group, so a Ctrl-C on the terminal
    reaches portmatrix alone (which stops dumpcap cleanly, in order); and the
    kernel stops it when portmatrix dies, however that happens (Linux)."""
    import ctypes
    import signal

    os.setpgrp()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def find_dumpcap(explicit: str | None = None) -> str | None:
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise CaptureSetupError(
                "not an executable dumpcap",
                file=explicit,
                hint="give the path of dumpcap (package tshark)",
            )
        return explicit
    return shutil.which("dumpcap")


def interfaces(dumpcap: str) -> list[str]:
    """Interface names dumpcap can capture on (`dumpcap -D`)."""
    out = subprocess.run([dumpcap, "-D"], capture_output=True, text=True, timeout=30)
    names = []
    for line in out.stdout.splitlines():
        _, _, rest = line.partition(". ")
        if rest:
            names.append(rest.split(" ")[0])
    if out.returncode and not names:
        _raise_for(out.stderr, dumpcap)
    return names


def _raise_for(stderr: str, what: str) -> None:
    text = " ".join(stderr.split())
    if "ermission" in text or "Operation not permitted" in text:
        raise CaptureSetupError("no permission to capture", file=what, hint=PERMISSION_HINT)
    raise CaptureSetupError(
        f"capture failed: {text[:300] or 'no message'}",
        file=what,
        hint="check the interface and the capture filter",
    )


def kernel_drops(ifaces: list[str]) -> int:
    """Packets the interfaces themselves dropped (Linux counters), for the summary."""
    total = 0
    for name in ifaces:
        try:
            with open(f"/sys/class/net/{name}/statistics/rx_dropped") as fh:
                total += int(fh.read())
        except (OSError, ValueError):
            pass
    return total


class _Peeked:
    """An unbuffered pipe whose first bytes were read to see that the capture started."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.first = raw.read(4096) or b""  # dumpcap writes its header once it runs

    def fileno(self) -> int:
        return self.raw.fileno()

    def read1(self, n: int = -1) -> bytes:
        if self.first:
            out, self.first = self.first, b""
            return out
        return self.raw.read(n if n > 0 else 65536) or b""

    read = read1

    def readinto1(self, buf) -> int:
        if self.first:
            n = min(len(buf), len(self.first))
            buf[:n] = self.first[:n]
            self.first = self.first[n:]
            return n
        return self.raw.readinto(buf) or 0

    readinto = readinto1

    def close(self) -> None:
        self.raw.close()


class DumpcapCapture:
    """dumpcap on one or more interfaces, read as batches as packets arrive."""

    def __init__(
        self,
        ifaces: list[str],
        bpf: str | None = None,
        dumpcap: str | None = None,
        buffer_mb: int | None = None,
    ) -> None:
        self.dumpcap = find_dumpcap(dumpcap)
        if self.dumpcap is None:
            raise CaptureSetupError(
                "dumpcap not found on PATH",
                file="dumpcap",
                hint="apt install tshark (it provides dumpcap), or give --dumpcap PATH",
            )
        known = interfaces(self.dumpcap)
        for name in ifaces:
            if name not in known:
                raise CaptureSetupError(
                    f"unknown interface {name!r}",
                    where="-i",
                    hint=f"interfaces: {', '.join(known) or 'none'}",
                )
        cmd = [self.dumpcap, "-q", "-w", "-"]
        for name in ifaces:
            cmd += ["-i", name]
        if bpf:
            cmd += ["-f", bpf]
        if buffer_mb:
            cmd += ["-B", str(buffer_mb)]
        self.ifaces = ifaces
        self.stopping = False  # set by stop(): an exit after it is not a failure
        # Unbuffered: the reader waits on the pipe itself (select), nothing hides in a buffer.
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            preexec_fn=_die_with_parent,
        )
        self._stderr: list[bytes] = []
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()
        try:
            # dumpcap writes its section header as soon as the interfaces are open.
            self.capture = self._open()
        except BaseException:
            self.kill()
            raise
        self.info = self.capture.info

    def _drain_stderr(self) -> None:
        for line in self.proc.stderr:
            self._stderr.append(line)

    def _open(self) -> Capture:
        stream = _Peeked(self.proc.stdout)
        if not stream.first:
            self.proc.wait(timeout=10)
            time.sleep(0.1)
            _raise_for(b"".join(self._stderr).decode(errors="replace"), "dumpcap")
        return Capture("dumpcap:" + ",".join(self.ifaces), stream=stream)

    def batches(self) -> Iterator[RawBatch]:
        yield from self.capture.batches()

    @property
    def died(self) -> str:
        """Why dumpcap ended on its own ("" while running or stopped by us)."""
        code = self.proc.poll()
        if code in (None, 0) or self.stopping:
            return ""
        # What dumpcap said, without the banner it prints on every start.
        said = [
            line.strip()
            for line in b"".join(self._stderr).decode(errors="replace").splitlines()
            if line.strip() and not line.startswith(("Capturing on", "File:"))
        ]
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        return f"dumpcap ended on its own ({how})" + (f": {' '.join(said)[:300]}" if said else "")

    def stop(self) -> None:
        """Ask dumpcap to finish: it writes its statistics blocks, then the pipe ends."""
        self.stopping = True
        if self.proc.poll() is None:
            self.proc.terminate()

    def kill(self) -> None:
        """Make sure dumpcap is gone and its pipes closed (after `stop`, or instead)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                pipe.close()
        self._drain.join(timeout=3)


class ScapyCapture:
    """The fallback where dumpcap is missing: scapy's sniffer, batched by time.
    Much slower than dumpcap; fine for light traffic."""

    def __init__(self, ifaces: list[str], bpf: str | None = None) -> None:
        try:
            from scapy.all import AsyncSniffer, get_if_list  # slow import: only on this path
        except ImportError:
            raise CaptureSetupError(
                "dumpcap is not installed, nor scapy, whose sniffer is the fallback",
                hint="apt-get install tshark (it provides dumpcap), or "
                "pip install 'portmatrix[scapy]' for the slower fallback",
            ) from None

        known = get_if_list()
        for name in ifaces:
            if name not in known:
                raise CaptureSetupError(
                    f"unknown interface {name!r}",
                    where="-i",
                    hint=f"interfaces: {', '.join(known) or 'none'}",
                )
        self.ifaces = ifaces
        self.info = CaptureInfo(path="scapy:" + ",".join(ifaces), format="scapy")
        self.info.interfaces = [Interface(linktype=1, name=n) for n in ifaces]
        self._packets: list = []
        self._lock = threading.Lock()
        self.frames = 0
        self.stopping = False
        self.sniffer = AsyncSniffer(
            iface=ifaces if len(ifaces) > 1 else ifaces[0], filter=bpf, store=False, prn=self._keep
        )
        self.sniffer.start()
        # The sniffer opens its sockets on its own thread and keeps any error there.
        time.sleep(0.5)
        error = self._error()
        if error:
            if isinstance(error, PermissionError):
                raise CaptureSetupError(
                    "no permission to capture", file="scapy", hint=PERMISSION_HINT
                )
            raise CaptureSetupError(f"cannot capture: {error}", file="scapy")

    def _error(self) -> BaseException | None:
        return getattr(self.sniffer, "exception", None)

    def _keep(self, pkt) -> None:
        with self._lock:
            self._packets.append((int(pkt.time * 1e9), bytes(pkt)))

    def batches(self) -> Iterator[RawBatch]:
        while True:
            time.sleep(0.1)
            running = self.sniffer.running
            with self._lock:
                got, self._packets = self._packets, []
            if got:
                yield self._batch(got)
            if not running:  # stopped (and joined) or failed: nothing more will come
                return

    def _batch(self, got) -> RawBatch:
        sizes = np.array([len(b) for _, b in got], np.int64)
        offset = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
        data = np.frombuffer(b"".join(b for _, b in got), np.uint8)
        n = len(got)
        first = self.frames
        self.frames += n
        self.info.frames = self.frames
        return RawBatch(
            data=data,
            offset=offset,
            caplen=sizes,
            wirelen=sizes.copy(),
            ts=np.array([t for t, _ in got], np.int64),
            linktype=np.ones(n, np.int32),
            iface=np.zeros(n, np.int32),
            frame=np.arange(first + 1, first + n + 1, dtype=np.int64),
            file_offset=np.full(n, -1, np.int64),
        )

    @property
    def died(self) -> str:
        error = self._error()
        return "" if error is None or self.stopping else f"scapy's sniffer failed: {error}"

    def stop(self) -> None:
        """Stop sniffing; the packets caught until then are still handed over."""
        self.stopping = True
        with contextlib.suppress(Exception):  # already stopped
            self.sniffer.stop(join=True)

    def kill(self) -> None:
        self.stop()


def open_live(ifaces: list[str], bpf: str | None, dumpcap: str | None, buffer_mb: int | None):
    """dumpcap when there is one; scapy's sniffer (with a warning) otherwise."""
    if dumpcap or find_dumpcap():
        return DumpcapCapture(ifaces, bpf, dumpcap, buffer_mb), ""
    return ScapyCapture(ifaces, bpf), (
        "dumpcap not found: capturing with scapy's sniffer, "
        "which keeps up with far less traffic (apt install "
        "tshark provides dumpcap)"
    )


class Ring:
    """A second dumpcap keeping the raw traffic in a ring of pcapng files (dumpcap's
    -b options), so the packets behind a finding can be pulled out with `check`.
    dumpcap cannot write a ring and a pipe at once, hence a process of its own."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def prepare_ring(folder: str) -> None:
    """The ring's folder, made and checked writable before any capture starts."""
    parent = os.path.dirname(os.path.abspath(folder))
    if os.path.exists(parent) and not os.path.isdir(parent):
        raise CaptureSetupError(
            f"{parent} is a file, not a folder", file=folder, where="--ring", hint="give a folder"
        )
    if not os.path.isdir(parent):
        raise CaptureSetupError(
            f"the folder {parent} does not exist",
            file=folder,
            where="--ring",
            hint=f"create it first (mkdir -p {parent})",
        )
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise CaptureSetupError(
            f"cannot create the ring folder: {exc.strerror}",
            file=folder,
            where="--ring",
            hint="give a folder, or a new name in one",
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CaptureSetupError(
            "no permission to write in the ring folder",
            file=folder,
            where="--ring",
            hint="choose a folder dumpcap can write to",
        )


def start_ring(
    ifaces: list[str], bpf: str | None, dumpcap: str | None, folder: str, files: int, size_mb: int
) -> Ring:
    exe = find_dumpcap(dumpcap)
    if exe is None:
        raise CaptureSetupError(
            "--ring needs dumpcap", file="dumpcap", hint="apt install tshark (it provides dumpcap)"
        )
    prepare_ring(folder)
    cmd = [
        exe,
        "-q",
        "-w",
        os.path.join(folder, "portmatrix.pcapng"),
        "-b",
        f"filesize:{size_mb * 1000}",
        "-b",
        f"files:{files}",
    ]
    for name in ifaces:
        cmd += ["-i", name]
    if bpf:
        cmd += ["-f", bpf]
    return Ring(
        subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
    )
