"""Findings as RFC 5424 messages, received by listeners on 127.0.0.1 (UDP, TCP
with octet counting) and a unix socket, parsed back by the RFC's grammar."""

from __future__ import annotations

import os
import re
import socket
import threading

import pytest

from portmatrix.errors import PortmatrixError
from portmatrix.report.formats import ecs_finding
from portmatrix.watch.syslog import Syslog, Target, format_message, parse_target

# RFC 5424 section 6, as a regular expression: HEADER SP STRUCTURED-DATA [SP MSG].
RFC5424 = re.compile(
    rb"<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) "
    rb"(?P<host>[!-~]{1,255}) (?P<app>[!-~]{1,48}) (?P<pid>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) "
    rb"\[(?P<sdid>[^ =\]\"]+)(?P<params>(?: [^ =\]\"]+=\"(?:[^\"\\\]]|\\[\"\\\]])*\")*)\]"
    rb" \xef\xbb\xbf(?P<msg>.*)\Z",
    re.S,
)


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("siem.example", Target("udp", "siem.example", 514)),
        ("siem.example:1514", Target("udp", "siem.example", 1514)),
        ("udp://10.0.0.5:514", Target("udp", "10.0.0.5", 514)),
        ("tcp://siem.example:6514", Target("tcp", "siem.example", 6514)),
        ("tcp://[2001:db8::5]:601", Target("tcp", "2001:db8::5", 601)),
        ("/dev/log", Target("unix", path="/dev/log")),
        ("unix:///run/syslog.sock", Target("unix", path="/run/syslog.sock")),
    ],
)
def test_addresses(text, target):
    assert parse_target(text) == target


@pytest.mark.parametrize("text", ["http://x:1", "udp://", "tcp://host:99999", "host:port"])
def test_a_bad_address_is_one_error_with_the_forms(text):
    with pytest.raises(PortmatrixError, match="not a syslog address") as err:
        parse_target(text)
    assert err.value.where == "--syslog" and "tcp://HOST:PORT" in err.value.hint


def record(demo_watch, reason="new"):
    _, events = demo_watch
    finding = next(e.finding for e in events if e.finding.verdict == "wrong-direction")
    r = ecs_finding(finding.to_dict(), "thoughtspot", created="2025-01-31T10:00:00Z")
    r["event"]["reason"] = reason
    return r


def test_a_message_by_the_rfc(demo_watch):
    message = format_message(record(demo_watch), hostname="sensor1", pid=4242)
    m = RFC5424.match(message)
    assert m, message
    assert int(m["pri"]) == 3 * 8 + 3  # daemon, err
    assert (m["ts"], m["host"], m["app"], m["pid"], m["msgid"]) == (
        b"2025-01-31T10:00:00Z",
        b"sensor1",
        b"portmatrix",
        b"4242",
        b"new",
    )
    assert m["sdid"] == b"portmatrix@32473"
    params = dict(re.findall(rb' ([^ =]+)="((?:[^"\\]|\\.)*)"', m["params"]))
    assert params[b"event.action"] == b"wrong-direction"
    assert params[b"source.ip"] == b"10.20.0.11" and params[b"destination.port"] == b"22"
    assert m["msg"].decode().startswith("10.20.0.11 (nodes) opened tcp/22")


def test_a_recovery_is_a_notice_and_values_are_escaped(demo_watch):
    r = record(demo_watch, "recovered")
    r["rule"]["name"] = 'a "quoted" ] name \\'
    m = RFC5424.match(format_message(r))
    assert m and int(m["pri"]) == 3 * 8 + 5 and m["msgid"] == b"recovered"
    assert rb'rule.name="a \"quoted\" \] name \\"' in m["params"]


def test_control_characters_from_the_wire_cannot_break_a_message(demo_watch):
    """A name learned from packets or a rule's text could carry a newline: some
    servers end a message there, so the rest would be a forged message of its own."""
    r = record(demo_watch)
    r["rule"]["name"] = "evil\n<11>1 forged"
    r["message"] = "line one\n<11>1 2025-01-31T10:00:00Z forged portmatrix - new - x\x1b[2J"
    message = format_message(r)
    assert b"\n" not in message and b"\x1b" not in message
    m = RFC5424.match(message)
    assert m and rb'rule.name="evil\\n<11>1 forged"' in m["params"]
    assert m["msg"].startswith(b"line one\\n<11>1")


def test_received_over_udp(demo_watch):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(5)
        log = Syslog(parse_target(f"127.0.0.1:{server.getsockname()[1]}"))
        log.send(record(demo_watch))
        log.close()
        assert RFC5424.match(server.recv(65536))
        assert (log.sent, log.unsent) == (1, 0)


def test_received_over_tcp_in_octet_counted_frames(demo_watch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        got = bytearray()

        def serve():
            conn, _ = server.accept()
            with conn:
                while data := conn.recv(65536):
                    got.extend(data)

        thread = threading.Thread(target=serve)
        thread.start()
        log = Syslog(parse_target(f"tcp://127.0.0.1:{server.getsockname()[1]}"))
        for reason in ("new", "escalated"):
            log.send(record(demo_watch, reason))
        log.close()
        thread.join(timeout=5)
    frames = []
    rest = bytes(got)
    while rest:  # RFC 6587 3.4.1: MSG-LEN SP SYSLOG-MSG
        length, _, rest = rest.partition(b" ")
        frames.append(rest[: int(length)])
        rest = rest[int(length) :]
    assert [RFC5424.match(f)["msgid"] for f in frames] == [b"new", b"escalated"]


def test_received_on_a_unix_socket(tmp_path, demo_watch):
    path = str(tmp_path / "log.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(5)
        log = Syslog(parse_target(path))
        log.send(record(demo_watch))
        log.close()
        assert RFC5424.match(server.recv(65536))


def test_a_server_that_is_not_there_is_refused_before_capture():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(PortmatrixError, match=f"cannot reach tcp://127.0.0.1:{port}"):
            Syslog(parse_target(f"tcp://127.0.0.1:{port}"))


def test_a_server_that_goes_away_is_tried_again_later(demo_watch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        log = Syslog(parse_target(f"tcp://127.0.0.1:{server.getsockname()[1]}"))
        conn, _ = server.accept()
        conn.close()
    sent = 0
    for _ in range(20):  # the peer closed: a write fails soon (reset or broken pipe)
        try:
            log.send(record(demo_watch))
            sent += 1
        except OSError:
            break
    else:
        pytest.fail("writing to a closed connection never failed")
    log.send(record(demo_watch))  # within RETRY: counted as not sent, no new attempt
    assert log.unsent == 2
    log.close()


def test_not_a_unix_socket_is_refused(tmp_path):
    plain = tmp_path / "file"
    plain.write_text("x")
    with pytest.raises(PortmatrixError, match="not a unix socket"):
        Syslog(parse_target(str(plain)))
    assert os.path.exists(plain)
