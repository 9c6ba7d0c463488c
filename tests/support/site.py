"""A small matrix, inventory and exceptions file whose verdicts are easy to
predict, for tests that build their captures packet by packet.

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


@dataclass(frozen=True)
class Site:
    matrix: Path
    inventory: Path
    exceptions: Path


def write_site(folder: str | Path) -> Site:
    """Write matrix.yaml, inventory.yaml and exceptions.yaml into `folder`."""
    folder = Path(folder)
    paths = []
    for name, text in (
        ("matrix.yaml", MATRIX),
        ("inventory.yaml", INVENTORY),
        ("exceptions.yaml", EXCEPTIONS),
    ):
        path = folder / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return Site(*paths)
