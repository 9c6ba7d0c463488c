"""Sites (a matrix, an inventory, maybe exceptions) for tests, by name in
`SITES`; tests get them written to files through the `site(name)` fixture
(tests/conftest.py) or `write_site(folder, name)`.

The "small" site: a matrix, inventory and exceptions file whose verdicts are
easy to predict, for tests that build their captures packet by packet.

Roles and addresses (`INVENTORY`):

| role   | addresses                         |
|--------|-----------------------------------|
| nodes  | 10.0.0.1-10.0.0.3, fd00::1, fd00::2 |
| admins | 10.0.1.5, fd00:1::5               |
| users  | 10.0.2.0/24                       |
| (none) | 192.0.2.0/24; 10.0.9.9 is named only by the exception backup-ssh |

Rules (`MATRIX`): ssh-from-admins tcp/22 admins -> nodes; https-from-users
tcp/443 users -> nodes; node-rpc tcp/7000 nodes <-> nodes (required);
node-gossip udp/7946 nodes <-> nodes (required); syslog udp/514 nodes ->
admins; node-ping icmp nodes <-> nodes.

Exceptions (`EXCEPTIONS`, layered with `--rules matrix --rules exceptions`):
backup-ssh lets 10.0.9.9 open tcp/22 on nodes until 2099-01-01; old-snmp let
users reach udp/161 on nodes until 2020-01-01 (expired).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

N1, N2, N3 = "10.0.0.1", "10.0.0.2", "10.0.0.3"
N1_6, N2_6 = "fd00::1", "fd00::2"
ADMIN, ADMIN_6 = "10.0.1.5", "fd00:1::5"
USER = "10.0.2.7"
BACKUP = "10.0.9.9"
OUT1, OUT2 = "192.0.2.1", "192.0.2.2"

MATRIX = """\
name: small
roles:
  nodes: Cluster nodes
  admins: Administrators
  users: Users
rules:
  - id: ssh-from-admins
    service: SSH
    proto: tcp
    ports: 22
    from: admins
    to: nodes
  - id: https-from-users
    service: HTTPS
    proto: tcp
    ports: 443
    from: users
    to: nodes
  - id: node-rpc
    service: RPC
    proto: tcp
    ports: 7000
    from: nodes
    to: nodes
    initiator: either
    required: true
  - id: node-gossip
    service: Gossip
    proto: udp
    ports: 7946
    from: nodes
    to: nodes
    initiator: either
    required: true
  - id: syslog
    service: Syslog
    proto: udp
    ports: 514
    from: nodes
    to: admins
  - id: node-ping
    service: ICMP
    proto: icmp
    from: nodes
    to: nodes
    initiator: either
"""

INVENTORY = """\
roles:
  nodes: [10.0.0.1-10.0.0.3, "fd00::1", "fd00::2"]
  admins: [10.0.1.5, "fd00:1::5"]
  users: [10.0.2.0/24]
"""

EXCEPTIONS = """\
name: site
exceptions:
  - id: backup-ssh
    from: [10.0.9.9]
    to: nodes
    proto: tcp
    ports: 22
    reason: nightly backup
    expires: 2099-01-01
  - id: old-snmp
    from: users
    to: nodes
    proto: udp
    ports: 161
    reason: monitoring trial
    expires: 2020-01-01
"""


# Role maps (tests/unit/policy): roles from the inventory, fixed by the matrix
# (vendor, with a hostname nothing resolves), named by an exception (backup's
# addresses), and one used by no rule (spare).
ROLES_MATRIX = """\
name: demo
roles:
  nodes: All nodes
  admins: Administrators
  relay: Mail relay
  spare: Defined, used by no rule
  vendor:
    addresses: [208.83.110.20]
    hostnames: [files.vendor.example]
rules:
  - id: ssh
    service: SSH
    proto: tcp
    ports: 22
    from: admins
    to: nodes
  - id: smtp
    service: SMTP
    proto: tcp
    ports: 25
    from: nodes
    to: relay
  - id: upload
    service: HTTPS
    proto: tcp
    ports: 443
    from: nodes
    to: vendor
exceptions:
  - id: backup
    from: [10.9.9.9, "10.8.0.0/16"]
    to: nodes
    proto: tcp
    ports: 22
    reason: Backups
"""

ROLES_INVENTORY = """\
roles:
  nodes: [10.1.1.11-10.1.1.16]
  admins: [192.168.10.0/28, 10.1.1.16]
  relay: [mail.example.com, ghost.example.com]
hosts:
  mail.example.com: [10.1.2.25]
"""

# A role known only by a hostname: its address comes from the DNS answers in the
# capture (telemetry.vendor.example) or from nothing.
BY_HOSTNAME_MATRIX = """\
name: by-hostname
roles:
  nodes: {description: the cluster}
  telemetry:
    description: a vendor endpoint known by name
    hostnames: [telemetry.vendor.example]
rules:
  - {id: telemetry, service: Telemetry, proto: tcp, ports: 443, from: nodes, to: telemetry}
"""

BY_HOSTNAME_INVENTORY = """\
roles:
  nodes: [10.0.0.1]
"""


@dataclass(frozen=True)
class SiteText:
    matrix: str
    inventory: str
    exceptions: str | None = None  # a second rules file layered on the matrix


SITES = {
    "small": SiteText(MATRIX, INVENTORY, EXCEPTIONS),
    "roles": SiteText(ROLES_MATRIX, ROLES_INVENTORY),
    "by-hostname": SiteText(BY_HOSTNAME_MATRIX, BY_HOSTNAME_INVENTORY),
}


@dataclass(frozen=True)
class Site:
    matrix: Path
    inventory: Path
    exceptions: Path | None


def write_site(folder: str | Path, name: str = "small") -> Site:
    """Write the site `name` of SITES into `folder`: matrix.yaml, inventory.yaml
    and, when it has them, exceptions.yaml."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = SITES[name]
    paths = []
    for file, content in (
        ("matrix.yaml", text.matrix),
        ("inventory.yaml", text.inventory),
        ("exceptions.yaml", text.exceptions),
    ):
        path = None
        if content is not None:
            path = folder / file
            path.write_text(content, encoding="utf-8")
        paths.append(path)
    return Site(*paths)
