"""Hostnames learned from the DNS answers of real captures, checked against
tshark's reading of the same responses (the question's name and its A/AAAA
records)."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

import pytest

from portmatrix.addresses import to_int
from portmatrix.decode import decode, dns
from portmatrix.sources.capture import Capture
from support.tshark import tshark


def addr(text: str) -> int:
    return to_int(ipaddress.ip_address(text))


def tshark_answers(path: Path) -> dict[int, dict[str, set[int]]]:
    """frame -> {question name: A and AAAA records} for responses from port 53 with
    no authority or additional records (tshark lists those sections' addresses too)."""
    out = subprocess.run(
        [
            tshark(),
            "-r",
            str(path),
            "-Y",
            "dns.flags.response == 1 && udp.srcport == 53 "
            "&& dns.flags.rcode == 0 && dns.count.auth_rr == 0 && dns.count.add_rr == 0",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "dns.qry.name",
            "-e",
            "dns.a",
            "-e",
            "dns.aaaa",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = {}
    for line in out.splitlines():
        frame, name, v4, v6 = (line.split("\t") + ["", "", ""])[:4]
        addrs = {addr(a) for a in (v4.split(",") + v6.split(",")) if a}
        if addrs:
            found[int(frame)] = {name.lower(): addrs}
    return found


@pytest.mark.parametrize("name", ["PcapPlusPlus__DnsPackets.pcap", "PcapPlusPlus__raw_ip.pcap"])
def test_question_names_resolve_as_tshark_reads_them(capture, name):
    path = capture(name)
    expected = tshark_answers(path)
    assert expected  # the capture has answers to compare
    ours = {}
    for raw in Capture(str(path)).batches():
        rows, _ = decode(raw)
        for frame, message in dns.responses(raw, rows):
            if frame in expected:
                (question,) = expected[frame]
                ours[frame] = {question: dns.answers(message).get(question, set())}
    assert ours == expected
