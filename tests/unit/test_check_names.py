"""check learns role hostnames from what clients name — TLS SNI, HTTP Host, QUIC —
with no DNS in the capture: the flow that named it reaches the role, and that
flow only; a name its DNS answers contradict is not believed; damaged hellos are
counted; the notice says how each name was learned."""

from __future__ import annotations

import json

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import UDP

from portmatrix.check import run_check
from portmatrix.report.formats import render_json
from portmatrix.testing.captures import ip, write_pcap
from support import apps

NODE = "10.0.0.1"  # the by-hostname site's node
NAME = "telemetry.vendor.example"
EDGE, OTHER = "203.0.113.7", "203.0.113.8"


def tls_to(server: str, sni: str, sport: int, port: int = 443):
    hello = apps.tls_record(apps.client_hello(sni))
    return apps.conversation(NODE, server, sport, port, [("c", hello), ("s", apps.SERVER_HELLO)])


def check(tmp_path, site, packets):
    s = site("by-hostname")
    capture = write_pcap(tmp_path / "c.pcap", apps.frames_of(packets))
    return run_check([str(capture)], [str(s.matrix)], str(s.inventory))


def verdicts(result) -> dict[tuple[str, int], str]:
    from portmatrix.policy.lookup import VERDICTS
    from portmatrix.report.flow_rows import flow_columns

    cols = flow_columns(result.traffic.flows)
    return {
        (r, p): VERDICTS[v]
        for r, p, v in zip(
            cols["responder"],
            cols["initiator_port"],
            result.classified.verdict.tolist(),
            strict=True,
        )
    }


def test_sni_names_the_role_of_that_flow_only(tmp_path, site):
    packets = tls_to(EDGE, NAME, 40000)
    packets += apps.conversation(NODE, EDGE, 40001, 443, [("c", b"no name here")])
    result = check(tmp_path, site, packets)
    assert verdicts(result) == {(EDGE, 40000): "allowed", (EDGE, 40001): "unexpected-port"}
    notice = next(n for n in result.notices if n.startswith("hostnames learned"))
    assert f"{NAME} → {EDGE} for the 1 flow whose client named it (TLS SNI)" in notice
    assert "can be forged" in notice and "only that flow's destination" in notice
    assert not any("no known address" in n for n in result.notices)


def test_http_host_and_quic_name_it_too(tmp_path, site):
    packets = apps.conversation(NODE, EDGE, 40000, 443, [("c", apps.http_request(NAME))])
    quic = apps.quic_initial(apps.client_hello(NAME, ("h3",)))
    packets.append(ip(NODE, OTHER) / UDP(sport=40001, dport=443) / quic)
    result = check(tmp_path, site, packets)
    by_flow = verdicts(result)
    assert by_flow[(EDGE, 40000)] == "allowed"  # HTTP Host, on the rule's tcp/443
    # QUIC named the role too: udp/443 is simply not in the matrix for it.
    assert by_flow[(OTHER, 40001)] == "unexpected-port"
    assert any("telemetry" in f.responder_roles for f in result.findings if f.proto == "udp")
    notice = next(n for n in result.notices if n.startswith("hostnames learned"))
    assert "HTTP Host" in notice and "QUIC SNI" in notice


def dns_answer(name: str, address: str):
    query = ip(NODE, "10.0.0.53") / UDP(sport=50000, dport=53) / DNS(rd=1, qd=DNSQR(qname=name))
    answer = (
        ip("10.0.0.53", NODE)
        / UDP(sport=53, dport=50000)
        / DNS(id=query[DNS].id, qr=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, rdata=address))
    )
    return [query, answer]


def test_a_name_its_dns_answers_contradict_is_not_believed(tmp_path, site):
    packets = dns_answer(NAME, EDGE) + tls_to(EDGE, NAME, 40000) + tls_to(OTHER, NAME, 40001)
    result = check(tmp_path, site, packets)
    by_flow = verdicts(result)
    assert by_flow[(EDGE, 40000)] == "allowed"  # by its DNS answer
    assert by_flow[(OTHER, 40001)] == "unexpected-port"  # the forged name is not enough
    notice = next(n for n in result.notices if n.startswith("hostnames learned"))
    assert f"{NAME} → {EDGE} (DNS answers)" in notice
    assert f"{NAME} named (TLS SNI) by clients of {OTHER}" in notice
    assert "not believed — a forged name" in notice


def test_damaged_hellos_are_counted_and_reported(tmp_path, site):
    record = bytearray(apps.tls_record(apps.client_hello(NAME)))
    record[9:11] = b"\x09\x09"
    packets = apps.conversation(NODE, EDGE, 40000, 443, [("c", bytes(record))])
    result = check(tmp_path, site, packets)
    assert verdicts(result) == {(EDGE, 40000): "unexpected-port"}
    assert any("1 TLS ClientHello" in n and "damaged" in n for n in result.notices)
    doc = json.loads(render_json(result))
    names = doc["inputs"]["captures"][0]["client_names"]
    assert names == {"seen": {"tls-sni": 1}, "damaged": {"tls-sni": 1}, "cut": {}}
