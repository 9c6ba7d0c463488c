"""Wireshark's dissectors as a second opinion on what a flow carries.

The first packets of the flows to label (`samples.py`, their ports already
replaced by ports no dissector is registered on) go to one `tshark -T fields`
run as a pcapng on its standard input; each frame's protocol stack names the deepest
protocol Wireshark recognised from the payload by its heuristics. Generic
layers (TCP, UDP, "data") name nothing. tshark is found on the PATH; without
it there is no second opinion, which the caller says once.
"""

from __future__ import annotations

import shutil
import subprocess

from portmatrix.apps.samples import Samples
from portmatrix.evidence import Extract, pcapng_blocks

# Layers that say nothing about the application. A stack ending in one of them
# (or in these followed by "data") is unidentified.
GENERIC = frozenset(
    (
        *("frame", "eth", "ethertype", "vlan", "ieee8021ad", "mpls", "gre", "erspan"),
        *("vxlan", "geneve", "ppp", "pppoes", "sll", "linux_sll", "linux_sll2", "null"),
        *("loop", "raw", "ip", "ipv6", "tcp", "udp", "sctp", "data", "media"),
        *("f5ethtrailer", "eth.trailer"),
    )
)
GENERIC_PREFIXES = ("ip.", "ipv6.", "tcp.", "udp.", "_ws.")
# Wireshark's protocol names that differ from our labels.
NAMES = {
    "pgsql": "postgresql",
    "smb2": "smb",
    "nbss": "smb",
    "imf": "smtp",
    "wg": "wireguard",
    "http2": "http2",
    "gquic": "gquic",
    "rdp": "rdp",
    "tpkt": "tpkt",
    "x224": "tpkt",
    "cotp": "tpkt",
    "mysql": "mysql",
    "ssl": "tls",
    "resp": "redis",
}
# Containers whose own name is the label, whatever Wireshark finds inside (QUIC
# carries TLS handshake messages: the flow is QUIC).
CONTAINERS = ("quic", "gquic", "dtls")
TIMEOUT = 120  # seconds for one tshark run (a few thousand packets take one or two)


def find() -> str | None:
    return shutil.which("tshark")


class Dissector:
    """One tshark run reading a pcapng from its standard input, started before its
    packets are known: its start-up (about 0.3 s of loading dissectors) then runs
    on another CPU while the captures are read again for the samples. On a single
    CPU there is nothing to overlap, and it starts when given its packets.

    It owns the process: `close` (or leaving the `with`) kills a run that was never
    given packets or is still running, on every path."""

    def __init__(self, program: str, early: bool) -> None:
        self.program = program
        self.process: subprocess.Popen | None = None
        if early:
            self._start()

    def _start(self) -> None:
        self.process = subprocess.Popen(
            [self.program, "-n", "-r", "-", "-T", "fields"]
            + ["-e", "frame.number", "-e", "frame.protocols"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def labels(self, found: Samples) -> dict[int, str]:
        """Flow index -> the protocol tshark names in its first packets (flows it
        names nothing for are absent)."""
        if not found.packets:
            return {}
        order = sorted(range(len(found.packets)), key=lambda k: _order(found.packets[k]))
        packets = [found.packets[k] for k in order]
        flows = [found.flow_of_packet[k] for k in order]
        data = b"".join(pcapng_blocks(Extract.of_packets(packets), found.infos))
        if self.process is None:
            self._start()
        try:
            stdout, _ = self.process.communicate(data, timeout=TIMEOUT)
        except (subprocess.TimeoutExpired, BrokenPipeError):
            self.close()
            return {}
        out: dict[int, str] = {}
        for line in stdout.decode("utf-8", "replace").splitlines():
            number, _, stack = line.partition("\t")
            if not number.isdigit() or not 0 < int(number) <= len(flows):
                continue
            name = deepest(stack)
            flow = flows[int(number) - 1]
            if name and flow not in out:
                out[flow] = name
        return out

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait()
            for pipe in (self.process.stdin, self.process.stdout):
                if pipe is not None:
                    pipe.close()

    def __enter__(self) -> Dissector:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def _order(p) -> tuple:
    return (p.ts, p.file, p.frame)


def deepest(stack: str) -> str | None:
    """Our label for the deepest protocol of a frame.protocols stack that names an
    application, None when it names none."""
    layers = stack.split(":")
    for container in CONTAINERS:
        if container in layers:
            return container
    for layer in reversed(layers):
        if layer and layer not in GENERIC and not layer.startswith(GENERIC_PREFIXES):
            return NAMES.get(layer, layer)
    return None
