"""Counting what the kernel offers a capture: libpcap's filter compiled for a
packet socket of our own, loopback's outgoing copies ignored, and a clear
reason whenever it cannot count."""

from __future__ import annotations

import os
import random
import socket
import time

import pytest

from portmatrix.sources import offered
from portmatrix.sources.offered import compile_filter, interface_drops, open_counter

AS_ROOT = os.geteuid() == 0


def test_no_filter_takes_every_packet():
    assert compile_filter("") == [(0x06, 0, 0, 0x40000)]


def test_a_filter_compiles_to_classic_bpf():
    program = compile_filter("udp port 53")
    assert len(program) > 5
    assert program[-1][0] == 0x06 and program[-1][3] == 0  # ... ret #0: not this one
    assert all(len(insn) == 4 for insn in program)


def test_a_filter_libpcap_rejects_is_a_value_error():
    with pytest.raises(ValueError, match="cannot compile the filter 'port banana'"):
        compile_filter("port banana")


@pytest.mark.skipif(not AS_ROOT, reason="a packet socket needs CAP_NET_RAW")
def test_packets_offered_on_loopback_are_counted_once_each():
    """Each packet crosses lo twice (out and in); the capture sees it once, and so
    must the count. Only packets the filter takes count."""
    port = random.randint(20000, 60000)
    counter, why = open_counter(["lo"], f"udp dst port {port}")
    assert counter is not None, why
    try:
        counter.reset()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(25):
                s.sendto(b"x", ("127.0.0.1", port))
                s.sendto(b"y", ("127.0.0.1", port + 1))  # another port: not counted
        time.sleep(0.2)
        assert counter.read() == [25]
        assert counter.read() == [25]  # the kernel's counters reset on read: added up here
        counter.reset()
        assert counter.read() == [0]
    finally:
        counter.close()


def test_an_interface_that_is_not_ethernet_like_is_not_counted():
    counter, why = open_counter(["no-such-iface0"], "")
    assert counter is None and why == "no-such-iface0 is not an Ethernet-like interface"


def test_a_filter_naming_vlans_is_not_counted():
    counter, why = open_counter(["lo"], "vlan 10 and tcp")
    assert counter is None and "names VLANs" in why


def test_without_permission_it_says_so(monkeypatch):
    def refuse(*_args, **_kw):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(offered.socket, "socket", refuse)
    counter, why = open_counter(["lo"], "")
    assert counter is None and "CAP_NET_RAW" in why


def test_interface_drops_are_the_cards_not_the_stacks(monkeypatch):
    values = {
        "eth0/statistics/rx_missed_errors": 7,
        "eth0/statistics/rx_fifo_errors": 2,
        "eth0/statistics/rx_dropped": 1000,  # frames the stack discarded after capture
    }
    monkeypatch.setattr(offered, "_sys", lambda name, what: values.get(f"{name}/{what}"))
    assert interface_drops(["eth0", "gone0"]) == [9, 0]
