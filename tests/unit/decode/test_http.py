"""The HTTP request reader: method, Host and User-Agent; cut, damaged or random
input never raises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from portmatrix.decode import http
from support import apps


def test_reads_method_target_host_and_agent():
    req = http.request(apps.http_request("Console.Example.com", "POST"))
    assert req == http.Request(http.OK, "POST", "/admin/login", "console.example.com", "curl/8.4.0")


def test_host_with_a_port_and_addresses_that_are_no_names():
    head = b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n"
    assert http.request(head % b"api.example.com:8443").host == "api.example.com"
    assert http.request(head % b"10.1.2.3:80").host is None
    assert http.request(head % b"[fd00::1]:80").host is None


def test_http_0_9_and_a_request_cut_short():
    assert http.request(b"GET /\r\n\r\n").status == http.OK
    cut = http.request(b"GET /x HTTP/1.1\r\nHost: a.example\r\nUser-Ag")
    assert (cut.status, cut.host) == (http.CUT, "a.example")
    assert http.request(b"GET /x HTT").status == http.CUT


def test_a_lost_segment_keeps_the_headers_before_it():
    req = http.request(b"GET / HTTP/1.1\r\nHost: a.example\r\nConnectGET /2 HTTP/1.1\r\n")
    assert (req.status, req.host) == (http.CUT, "a.example")


def test_not_a_request():
    for data in (b"HELLO / HTTP/1.1\r\n\r\n", b"GET\r\n\r\n", b"POST /\r\n\r\n", b"\x00" * 20):
        assert http.request(data).status == http.DAMAGED, data


def test_long_agents_are_cut_and_unprintables_replaced():
    req = http.request(b"GET / HTTP/1.1\r\nUser-Agent: " + b"\x01" * 1000 + b"\r\n\r\n")
    assert req.user_agent == "?" * http.MAX_FIELD


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data):
    for payload in (data, b"GET / HTTP/1.1\r\n" + data):
        assert http.request(payload).status in (http.OK, http.CUT, http.DAMAGED)
