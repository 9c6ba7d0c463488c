"""How many packets the kernel offered to the capture, per interface, while it runs.

dumpcap says what it dropped only when it stops (the interface statistics block
at the end of its pcapng), and on a loopback interface that figure counts each
lost packet twice (both copies crossing the loopback tap fill its buffer; only
one is ever captured). So portmatrix counts for itself: one packet socket per
interface with the capture's own filter (compiled by libpcap), a receive
buffer too small to hold anything and outgoing copies ignored on loopback, read
only through the kernel's PACKET_STATISTICS counters. Packets offered minus
packets captured is what the capture lost, each packet once; nothing is read
from the socket, so it costs the kernel a filter run per packet and portmatrix
nothing.

Linux only; it needs CAP_NET_RAW in portmatrix itself (dumpcap's own
capabilities do not lend it that). Where it cannot count — no permission, an
interface that is not Ethernet-like (the `any` pseudo-device, a tunnel), a
filter that names VLANs (the kernel strips tags before a socket's filter sees
them) — `open_counter` says why, and the drops are known when the capture ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import socket
import struct

SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_IGNORE_OUTGOING = 23
SO_ATTACH_FILTER = 26
ETH_P_ALL = 3
ETHERNET_LIKE = {1: "ether", 772: "loopback"}  # ARPHRD_* -> what it is; both DLT_EN10MB
IFF_LOOPBACK = 0x8


class _Insn(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint32),
    ]


class _Program(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_Insn))]


def _libpcap():
    for name in (ctypes.util.find_library("pcap"), "libpcap.so.1", "libpcap.so.0.8"):
        if name:
            with contextlib.suppress(OSError):
                return ctypes.CDLL(name)
    return None


def compile_filter(expression: str) -> list[tuple[int, int, int, int]]:
    """The classic BPF program of a libpcap filter on Ethernet frames (ValueError
    when libpcap is missing or rejects the filter)."""
    if not expression:
        return [(0x06, 0, 0, 0x40000)]  # ret #262144: every packet
    lib = _libpcap()
    if lib is None:
        raise ValueError("libpcap is not installed")
    prog = _Program()
    # pcap_compile_nopcap(snaplen, DLT_EN10MB, program, text, optimize, netmask)
    if lib.pcap_compile_nopcap(262144, 1, ctypes.byref(prog), expression.encode(), 1, 0xFFFFFFFF):
        raise ValueError(f"libpcap cannot compile the filter {expression!r}")
    try:
        return [
            (prog.bf_insns[i].code, prog.bf_insns[i].jt, prog.bf_insns[i].jf, prog.bf_insns[i].k)
            for i in range(prog.bf_len)
        ]
    finally:
        lib.pcap_freecode(ctypes.byref(prog))


def _sys(name: str, what: str) -> int | None:
    try:
        with open(f"/sys/class/net/{name}/{what}") as fh:
            return int(fh.read().strip(), 0)
    except (OSError, ValueError):
        return None


def is_loopback(name: str) -> bool:
    flags = _sys(name, "flags")
    return bool(flags is not None and flags & IFF_LOOPBACK)


class TapCounter:
    """Packets offered to the capture so far, per interface (see the module)."""

    def __init__(self, sockets: list[socket.socket], programs: list) -> None:
        self._sockets = sockets
        self._programs = programs  # the filters' memory, alive as long as the sockets
        self.totals = [0] * len(sockets)

    def read(self) -> list[int]:
        """Packets offered on each interface since the last `reset` (the kernel's
        counters reset on every read: they are added up here)."""
        for i, sock in enumerate(self._sockets):
            packets, _ = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
            self.totals[i] += packets  # includes what this socket itself dropped: all of it
        return list(self.totals)

    def reset(self) -> None:
        """Count from now on."""
        self.read()
        self.totals = [0] * len(self._sockets)

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets = []


def open_counter(ifaces: list[str], bpf: str) -> tuple[TapCounter | None, str]:
    """A TapCounter on `ifaces` with the capture filter `bpf`, or None and why not."""
    if "vlan" in bpf.split():
        return None, "the capture filter names VLANs, which a packet socket's filter cannot see"
    for name in ifaces:
        kind = _sys(name, "type")
        if kind not in ETHERNET_LIKE:
            return None, f"{name} is not an Ethernet-like interface"
    try:
        code = compile_filter(bpf)
    except ValueError as exc:
        return None, str(exc)
    sockets, programs = [], []
    try:
        for name in ifaces:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # receives nothing yet
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 0)  # the kernel's minimum
            insns = (_Insn * len(code))(*[_Insn(*i) for i in code])
            programs.append(insns)
            fprog = struct.pack("HL", len(code), ctypes.addressof(insns))
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
            if is_loopback(name):  # each packet crosses lo twice: count it once, as captured
                sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            sock.bind((name, ETH_P_ALL))
    except PermissionError:
        for sock in sockets:
            sock.close()
        return None, "portmatrix itself may not open a packet socket (it needs CAP_NET_RAW)"
    except OSError as exc:
        for sock in sockets:
            sock.close()
        return None, f"cannot count at the interfaces: {exc.strerror or exc}"
    return TapCounter(sockets, programs), ""


def interface_drops(ifaces: list[str]) -> list[int]:
    """Packets each interface's card could not take in (rx_missed_errors +
    rx_fifo_errors, what libpcap calls interface drops): lost before any capture
    saw them. Not rx_dropped: the stack counts there frames it discarded after the
    capture had them (unknown protocols, VLANs nobody listens on), which a span
    port receives by the million."""
    return [
        sum(_sys(name, f"statistics/{c}") or 0 for c in ("rx_missed_errors", "rx_fifo_errors"))
        for name in ifaces
    ]
