"""Names for the services a draft rule allows: the base matrix's own name for that
port when it has one, else the well-known service, else proto/port.

The table is fixed here (not /etc/services) so a draft reads the same on
every machine.
"""

from __future__ import annotations

from portmatrix.policy.matrix import Matrix
from portmatrix.policy.portsets import PortSet

WELL_KNOWN = {
    20: "FTP data",
    21: "FTP",
    22: "SSH",
    23: "Telnet",
    25: "SMTP",
    53: "DNS",
    67: "DHCP",
    69: "TFTP",
    80: "HTTP",
    88: "Kerberos",
    110: "POP3",
    111: "ONC RPC portmapper",
    123: "NTP",
    135: "MS-RPC endpoint mapper",
    137: "NetBIOS name",
    139: "NetBIOS session",
    143: "IMAP",
    161: "SNMP",
    162: "SNMP trap",
    389: "LDAP",
    443: "HTTPS",
    445: "SMB",
    465: "SMTPS",
    514: "Syslog",
    587: "SMTP submission",
    623: "IPMI",
    636: "LDAPS",
    873: "rsync",
    993: "IMAPS",
    995: "POP3S",
    1433: "MS SQL",
    1521: "Oracle",
    2049: "NFS",
    2181: "ZooKeeper",
    3306: "MySQL",
    3389: "RDP",
    5432: "Postgres",
    5672: "AMQP",
    6379: "Redis",
    8080: "HTTP alternate",
    8443: "HTTPS alternate",
    9092: "Kafka",
    9200: "Elasticsearch",
    11211: "Memcached",
    27017: "MongoDB",
}

DYNAMIC = {
    ("tcp", 21): "FTP passive data",
    ("tcp", 135): "MS-RPC dynamic endpoints",
    ("tcp", 111): "ONC RPC dynamic ports",
    ("udp", 111): "ONC RPC dynamic ports",
}
"""A control service whose presence says what the dynamic ports of the same role
pair are for."""


def service_name(proto: str, ports: PortSet, base: Matrix | None, beside=()) -> str:
    """The name of the service on `ports`; `beside` are the other (proto, port)
    the same role pair used (a control port names dynamic ports)."""
    if ports.kind == "pool":
        named = [DYNAMIC[k] for k in sorted(beside) if k in DYNAMIC]
        return named[0] if named else "Dynamic ports"
    if base is not None:
        for rule in base.rules:
            if rule.proto == proto and any(
                lo <= ports.lo and ports.hi <= hi for lo, hi in rule.ports
            ):
                return rule.service
    if ports.lo == ports.hi:
        return WELL_KNOWN.get(ports.lo, f"{proto}/{ports.lo}")
    return f"{proto}/{ports.lo}-{ports.hi}"
