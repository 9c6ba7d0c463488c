"""Required services a flow log never shows (AWS does not log the Amazon DNS
server, instance metadata, Time Sync, DHCP): `not-observable`, never missing."""

from __future__ import annotations

from portmatrix.check import run_check
from support import flowlogs as fl
from support.paths import CAPTURES

SITE = """
name: site
roles:
  aws-dns: {description: The Amazon DNS server}
  time: {description: Amazon Time Sync}
  logs: {description: The syslog server}
rules:
  - {id: dns, service: DNS, proto: udp, ports: 53, from: nodes, to: aws-dns, required: true}
  - {id: time, service: NTP, proto: udp, ports: 123, from: nodes, to: time, required: true}
  - {id: dhcp, service: DHCP, proto: udp, ports: [67, 68], from: nodes, to: any, required: true}
  - {id: syslog, service: syslog, proto: udp, ports: 514, from: nodes, to: logs, required: true}
"""


def test_unlogged_services_are_not_observable_in_aws_logs(tmp_path, write_yaml):
    site = write_yaml("site.yaml", SITE)
    inventory = write_yaml(
        "inv.yaml",
        """
        roles:
          nodes: [10.20.0.11-10.20.0.13]
          admins: [10.30.0.0/28]
          users: [10.40.0.0/16]
          aws-dns: [169.254.169.253]
          time: [169.254.169.123]
          logs: [10.50.0.9]
        """,
    )
    pcap = str(CAPTURES / "violations-small.pcap")
    rules = ["thoughtspot", str(site)]
    capture = run_check([pcap], rules, str(inventory))
    log = fl.write_aws(tmp_path / "f.log", fl.logged(capture.traffic.flows))
    logged = run_check([str(log)], rules, str(inventory), records="auto")
    status = {c.rule: c.status for c in logged.coverage}
    assert (status["dns"], status["time"], status["dhcp"]) == ("not-observable",) * 3
    assert status["syslog"] == "missing-required"  # traffic AWS logs
    missing = {f.rule for f in logged.findings if f.kind == "coverage"}
    assert {"dns", "time", "dhcp"}.isdisjoint(missing) and "syslog" in missing
    # A capture sees everything: there, they are missing.
    assert {c.rule: c.status for c in capture.coverage}["dns"] == "missing-required"
