"""Write the sample captures and their inventories into captures/.

    .venv/bin/python captures/make_captures.py

Every run writes the same bytes: the packets come from a seeded random number
generator (ephemeral ports, initial sequence numbers), timestamps are fixed
(from 2024-03-01T10:00:00Z), MAC addresses are derived from the IP addresses,
and nothing reads the clock. captures/README.md says what each capture holds
and which verdicts, findings and coverage `portmatrix check` must report for it
against the bundled ThoughtSpot matrix.

Captures:
  thoughtspot-demo.pcap   a three-node ThoughtSpot cluster with its clients and
                          servers, violations of every kind and failed required services
  violations-small.pcap   one flow per verdict, to check by hand
  midstream.pcap          connections whose handshakes were not captured
  one-way-span.pcap       a span port that only sees the client -> server half
  multi-link.pcapng       pcapng with an Ethernet and a Linux cooked (SLL) interface
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

HERE = Path(__file__).resolve().parent
START_US = 1_709_287_200_000_000  # 2024-03-01T10:00:00Z in microseconds
STEP_US = 1_000  # between the packets of one exchange
FLOW_GAP_US = 250_000  # between the starts of consecutive flows
WINDOW = 64240

# Addresses shared by the captures (see the inventories below).
N1, N2, N3 = "10.20.0.11", "10.20.0.12", "10.20.0.13"
IPMI1 = "10.20.1.11"
ADMIN = "10.30.0.5"
USER1, USER2, USER3, USER4, USER5 = (
    "10.40.1.7",
    "10.40.2.20",
    "10.40.3.9",
    "10.40.5.5",
    "10.40.6.6",
)
SUPPORT = "203.0.113.5"
SMTP_RELAY, LDAP_SERVER, NTP_SERVER = "10.50.0.25", "10.50.0.89", "10.50.0.123"
EGNYTE = "208.83.110.20"
IRC_HOST = "198.51.100.77"
STRAY_CLIENT, STRAY_SERVER = "192.0.2.10", "192.0.2.20"


def mac_of(ip: str) -> str:
    """A fixed, locally administered MAC address for an IPv4 address."""
    return "02:00:" + ":".join(f"{int(octet):02x}" for octet in ip.split("."))


@dataclass
class Frame:
    us: int  # timestamp, microseconds since the epoch
    ip: Packet  # the IP packet; the link layer is added on writing
    vlan: int | None = None
    iface: int = 0


@dataclass
class Capture:
    """The packets of one capture, in any order until they are written (sorted by time)."""

    seed: int
    frames: list[Frame] = field(default_factory=list)
    clock: int = START_US
    used_ports: set[tuple[str, int]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def next_flow(self, gap_us: int = FLOW_GAP_US) -> int:
        """The start time of the next flow."""
        start = self.clock
        self.clock += gap_us
        return start

    def ephemeral(self, host: str) -> int:
        """A client port in Linux's ephemeral range, never reused by the same host."""
        while True:
            port = self.rng.randrange(33000, 61000)
            if (host, port) not in self.used_ports:
                self.used_ports.add((host, port))
                return port

    def isn(self) -> int:
        return self.rng.randrange(1, 2**32)

    def add(self, us: int, ip: Packet, vlan: int | None = None, iface: int = 0) -> None:
        self.frames.append(Frame(us, ip, vlan, iface))

    def sorted_frames(self) -> list[Frame]:
        return sorted(self.frames, key=lambda f: f.us)  # stable: ties keep their order


# ---------------------------------------------------------------------------
# Exchanges
# ---------------------------------------------------------------------------


@dataclass
class TcpConn:
    """One TCP connection's two sequence spaces; `send` builds the next segment."""

    client: str
    server: str
    sport: int
    dport: int
    seq: dict[str, int]  # next sequence number of "client" and "server"

    def send(self, side: str, flags: str, data: bytes = b"") -> Packet:
        other = "server" if side == "client" else "client"
        src, dst = (self.client, self.server) if side == "client" else (self.server, self.client)
        sport, dport = (self.sport, self.dport) if side == "client" else (self.dport, self.sport)
        ack = self.seq[other] if "A" in flags else 0
        segment = TCP(
            sport=sport, dport=dport, flags=flags, seq=self.seq[side], ack=ack, window=WINDOW
        )
        self.seq[side] = (self.seq[side] + len(data) + ("S" in flags) + ("F" in flags)) % 2**32
        packet = IP(src=src, dst=dst) / segment
        return packet / Raw(data) if data else packet


def open_conn(cap: Capture, client: str, server: str, dport: int, sport: int = 0) -> TcpConn:
    """A new connection with a fresh client port (unless given) and initial sequence numbers."""
    sport = sport or cap.ephemeral(client)
    return TcpConn(client, server, sport, dport, {"client": cap.isn(), "server": cap.isn()})


def tcp_session(
    cap: Capture,
    client: str,
    server: str,
    dport: int,
    request: bytes = b"",
    response: bytes = b"",
    *,
    vlan: int | None = None,
    iface: int = 0,
    client_side_only: bool = False,
) -> None:
    """A complete connection: handshake, one request and its response, FIN both ways.

    `client_side_only` keeps only the client's packets, as a span port that sees
    one direction does.
    """
    conn = open_conn(cap, client, server, dport)
    request = request or payload(dport, "request")
    response = response or payload(dport, "response")
    steps = [
        ("client", "S", b""),
        ("server", "SA", b""),
        ("client", "A", b""),
        ("client", "PA", request),
        ("server", "PA", response),
        ("client", "FA", b""),
        ("server", "FA", b""),
        ("client", "A", b""),
    ]
    t = cap.next_flow()
    for side, flags, data in steps:
        packet = conn.send(side, flags, data)
        if side == "client" or not client_side_only:
            cap.add(t, packet, vlan, iface)
        t += STEP_US


def tcp_refused(
    cap: Capture, client: str, server: str, dport: int, *, vlan: int | None = None
) -> None:
    """A SYN answered by RST/ACK (nothing listens, or a firewall rejects it)."""
    conn = open_conn(cap, client, server, dport)
    t = cap.next_flow()
    cap.add(t, conn.send("client", "S"), vlan)
    conn.seq["server"] = 0  # a RST answering a SYN carries sequence number 0
    cap.add(t + STEP_US, conn.send("server", "RA"), vlan)


def tcp_unanswered(
    cap: Capture,
    client: str,
    server: str,
    dport: int,
    retransmissions: int = 3,
    *,
    vlan: int | None = None,
) -> None:
    """A SYN that nothing answers, retransmitted with the usual doubling back-off."""
    conn = open_conn(cap, client, server, dport)
    syn = conn.send("client", "S")
    t = cap.next_flow()
    backoff = 1_000_000
    for _ in range(retransmissions + 1):
        cap.add(t, syn.copy(), vlan)
        t += backoff
        backoff *= 2


def tcp_midstream(
    cap: Capture, client: str, server: str, dport: int, exchanges: int = 2, *, sport: int = 0
) -> None:
    """Data both ways on a connection opened before the capture started (no SYN seen)."""
    conn = open_conn(cap, client, server, dport, sport)
    t = cap.next_flow()
    for i in range(exchanges):
        for side in ("client", "server"):
            cap.add(t, conn.send(side, "PA", payload(dport, f"{side} {i}")))
            t += STEP_US
    cap.add(t, conn.send("client", "A"))


def udp_exchange(
    cap: Capture,
    client: str,
    server: str,
    dport: int,
    request: bytes,
    response: bytes,
    *,
    sport: int = 0,
    iface: int = 0,
) -> None:
    """A UDP request and its reply."""
    sport = sport or cap.ephemeral(client)
    sent = IP(src=client, dst=server) / UDP(sport=sport, dport=dport) / Raw(request)
    answer = IP(src=server, dst=client) / UDP(sport=dport, dport=sport) / Raw(response)
    t = cap.next_flow()
    cap.add(t, sent, iface=iface)
    cap.add(t + STEP_US, answer, iface=iface)


def udp_port_unreachable(cap: Capture, client: str, server: str, dport: int, request: bytes):
    """A UDP datagram that the server answers with ICMP port unreachable, quoting it."""
    sent = IP(src=client, dst=server) / UDP(sport=cap.ephemeral(client), dport=dport) / request
    t = cap.next_flow()
    cap.add(t, sent)
    quoted = bytes(sent)  # Linux quotes the whole datagram (up to 576 bytes in all)
    cap.add(t + STEP_US, IP(src=server, dst=client) / ICMP(type=3, code=3) / Raw(quoted))


def icmp_echo(
    cap: Capture, src: str, dst: str, ident: int, count: int = 2, *, vlan: int | None = None
) -> None:
    """`count` echo requests, one second apart, each answered."""
    t = cap.next_flow()
    for seq in range(1, count + 1):
        data = b"portmatrix-health" + bytes([seq])
        request = IP(src=src, dst=dst) / ICMP(type=8, id=ident, seq=seq) / Raw(data)
        reply = IP(src=dst, dst=src) / ICMP(type=0, id=ident, seq=seq) / Raw(data)
        cap.add(t, request, vlan)
        cap.add(t + STEP_US, reply, vlan)
        t += 1_000_000


SERVICE_PAYLOADS = {
    22: (b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n", b"SSH-2.0-OpenSSH_7.4\r\n"),
    80: (b"GET / HTTP/1.1\r\nHost: thoughtspot\r\n\r\n", b"HTTP/1.1 301 Moved\r\n\r\n"),
    8080: (b"GET /callosum/v1/session HTTP/1.1\r\nHost: node\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n"),
    587: (b"EHLO node\r\n", b"220 relay ESMTP ready\r\n"),
    6667: (b"NICK node\r\nUSER node 0 * :node\r\n", b":irc 001 node :Welcome\r\n"),
}


def payload(port: int, what: str) -> bytes:
    """A small, recognisable application payload for a port."""
    pair = SERVICE_PAYLOADS.get(port)
    if pair and what in ("request", "response"):
        return pair[0] if what == "request" else pair[1]
    return f"portmatrix demo: port {port} {what}\n".encode()


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------


def ethernet(frame: Frame) -> Packet:
    src, dst = frame.ip[IP].src, frame.ip[IP].dst
    link = Ether(src=mac_of(src), dst=mac_of(dst))
    if frame.vlan is not None:
        return link / Dot1Q(vlan=frame.vlan) / frame.ip
    return link / frame.ip


def write_pcap(cap: Capture, name: str) -> None:
    packets = []
    for frame in cap.sorted_frames():
        packet = ethernet(frame)
        packet.time = Decimal(frame.us) / 1_000_000
        packets.append(packet)
    wrpcap(str(HERE / name), packets)


LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL = 1, 113
SLL_HOST, SLL_OUTGOING = 0, 4


def linux_sll(frame: Frame, local: str) -> bytes:
    """A Linux cooked (SLL) header as `tcpdump -i any` on host `local` writes it."""
    src = frame.ip[IP].src
    kind = SLL_OUTGOING if src == local else SLL_HOST
    mac = bytes(int(x, 16) for x in mac_of(src).split(":"))
    return struct.pack("!HHH8sH", kind, 1, 6, mac + b"\0\0", 0x0800) + bytes(frame.ip)


def pcapng_block(block_type: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


def pcapng_option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


OPT_END = b"\0\0\0\0"


@dataclass
class Interface:
    linktype: int
    name: str
    tsresol: int  # decimal exponent: 6 = microseconds, 9 = nanoseconds
    to_bytes: Callable[[Frame], bytes]  # the frame with this interface's link layer


def write_pcapng(cap: Capture, name: str, interfaces: list[Interface]) -> None:
    """pcapng with one section and several interfaces of their own link type and
    time resolution (scapy's writers use one link type per file)."""
    out = [
        pcapng_block(
            0x0A0D0D0A,
            struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
            + pcapng_option(4, b"portmatrix captures/make_captures.py")  # shb_userappl
            + OPT_END,
        )
    ]
    for iface in interfaces:
        options = (
            pcapng_option(2, iface.name.encode())  # if_name
            + pcapng_option(9, bytes([iface.tsresol]))  # if_tsresol
            + OPT_END
        )
        out.append(pcapng_block(1, struct.pack("<HHI", iface.linktype, 0, 262144) + options))
    for frame in cap.sorted_frames():
        iface = interfaces[frame.iface]
        data = iface.to_bytes(frame)
        ts = frame.us * 10 ** (iface.tsresol - 6)
        header = struct.pack("<IIIII", frame.iface, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
        out.append(pcapng_block(6, header + data))
    (HERE / name).write_bytes(b"".join(out))


def write_text(name: str, text: str) -> None:
    (HERE / name).write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------
# The captures
# ---------------------------------------------------------------------------

DEMO_INVENTORY = """\
# Inventory of the ThoughtSpot demo cluster (captures/thoughtspot-demo.pcap).
# Every role of the bundled matrix has addresses; the vendor-fixed egnyte
# address is in the matrix itself. The other public addresses are from the
# documentation ranges (RFC 5737): support's, and under `hosts:` the stand-ins
# for what DNS would answer for the matrix's hostnames.
roles:
  nodes: [10.20.0.11-10.20.0.13]
  ipmi: [10.20.1.11-10.20.1.13]
  admins: [10.30.0.0/28]
  users: [10.40.0.0/16]
  support: [203.0.113.0/28]
  smtp-relay: [10.50.0.25]
  ldap-server: [10.50.0.89]
  ntp-server: [10.50.0.123]
  nfs-server: [10.50.0.49]
hosts:
  # The hostnames the matrix gives egnyte, mixpanel and monitoring-upload.
  thoughtspot.egnyte.com: [208.83.110.20]
  api.mixpanel.com: [198.51.100.40]
  je8b47jfif.execute-api.us-east-2.amazonaws.com: [198.51.100.50]
  s3.us-west-1.amazonaws.com: [198.51.100.51]
  s3-us-west-1.amazonaws.com: [198.51.100.51]
  s3.dualstack.us-west-1.amazonaws.com: [198.51.100.51]
"""

# Required intracluster rules that the demo shows working: (rule, ports).
# Each gets two connections on one pair of nodes, one opened by each node.
DEMO_REQUIRED = [
    ("oreo-rpc", (2100, 2100)),
    ("zookeeper-client", (2181, 3181)),
    ("orion-rpc", (2200, 2200)),
    ("zookeeper-peer", (2888, 3888)),
    ("callosum-metadata", (4021, 5021)),
    ("sage-rpc", (4232, 4251)),
]
NODE_PAIRS = [(N1, N2), (N2, N3), (N1, N3)]
TRUNK_VLAN = 20  # node 3 sits behind a trunk port: its cluster traffic is tagged


def cluster_vlan(*hosts: str) -> int | None:
    return TRUNK_VLAN if N3 in hosts else None


def node_session(cap: Capture, client: str, server: str, port: int) -> None:
    tcp_session(cap, client, server, port, vlan=cluster_vlan(client, server))


def thoughtspot_demo() -> None:
    cap = Capture(seed=20240301)
    # Required intracluster services, working, both nodes of a pair opening.
    for i, (_rule, (port_a, port_b)) in enumerate(DEMO_REQUIRED):
        low, high = NODE_PAIRS[i % len(NODE_PAIRS)]
        node_session(cap, low, high, port_a)
        node_session(cap, high, low, port_b)
    # ICMP health checks around the ring.
    for ident, (src, dst) in enumerate([(N1, N2), (N2, N3), (N3, N1)], start=0x7101):
        icmp_echo(cap, src, dst, ident, vlan=cluster_vlan(src, dst))
    # Intracluster services that are not required.
    node_session(cap, N2, N1, 8080)  # tomcat
    node_session(cap, N3, N2, 11211)  # memcached
    node_session(cap, N1, N3, 25123)  # dynamic-ports
    # Required services that fail; hdfs-namenode-rpc (8020) is missing entirely.
    tcp_refused(cap, N1, N3, 5432, vlan=cluster_vlan(N1, N3))  # postgres
    tcp_unanswered(cap, N2, N3, 4000, vlan=cluster_vlan(N2, N3))  # falcon-rpc
    # Administrators, users and ThoughtSpot Support reaching their ports.
    tcp_session(cap, ADMIN, N1, 22)  # ssh-from-admins
    tcp_session(cap, ADMIN, N2, 2201)  # orion-http-from-admins
    tcp_refused(cap, ADMIN, N3, 4001)  # falcon-http-from-admins, blocked: a warning
    tcp_session(cap, USER1, N1, 443)  # https-from-users
    tcp_session(cap, USER2, N2, 443)  # https-from-users
    tcp_session(cap, USER2, N3, 80)  # http-from-users
    tcp_session(cap, SUPPORT, N2, 22)  # ssh-from-support
    tcp_session(cap, SUPPORT, IPMI1, 443)  # ipmi-https-from-support
    # The nodes reaching out.
    tcp_session(cap, N1, EGNYTE, 443)  # egnyte-file-transfer
    tcp_session(cap, N2, SMTP_RELAY, 587)  # smtp
    tcp_session(cap, N3, LDAP_SERVER, 636)  # ldap
    udp_exchange(cap, N1, NTP_SERVER, 123, ntp(3), ntp(4))  # ntp, chrony-style client port
    udp_exchange(cap, N2, NTP_SERVER, 123, ntp(3), ntp(4), sport=123)  # ntp, ntpd-style
    # Violations.
    tcp_session(cap, N1, ADMIN, 22)  # wrong-direction
    tcp_session(cap, USER1, N2, 5432)  # unexpected-source (postgres is nodes -> nodes)
    tcp_session(cap, USER3, N3, 8443)  # unexpected-port
    tcp_session(cap, N2, IRC_HOST, 6667)  # unexpected-port, towards an address with no role
    tcp_refused(cap, USER4, N1, 22)  # unexpected-source, blocked: info
    udp_port_unreachable(cap, USER5, N2, 161, b"\x30\x26snmp get-request")  # unexpected-port
    # Neither end holds a role.
    tcp_session(cap, STRAY_CLIENT, STRAY_SERVER, 80)  # out-of-scope
    write_pcap(cap, "thoughtspot-demo.pcap")
    write_text("thoughtspot-demo.inventory.yaml", DEMO_INVENTORY)


def ntp(mode: int) -> bytes:
    """A 48-byte NTPv4 packet of `mode` (3 client, 4 server), otherwise zero."""
    return bytes([(4 << 3) | mode]) + bytes(47)


def inventory(capture: str, roles: dict[str, str]) -> str:
    """The inventory of a small capture: only the roles its flows use.

    `rules lint` warns that the other roles of the matrix have no addresses;
    that is expected for these captures.
    """
    lines = [f"# Inventory for captures/{capture}: only the roles its flows use.", "roles:"]
    lines += [f"  {role}: [{entries}]" for role, entries in roles.items()]
    return "\n".join(lines) + "\n"


CLIENT_ROLES = {
    "nodes": "10.20.0.11-10.20.0.13",
    "admins": "10.30.0.0/28",
    "users": "10.40.0.0/16",
}


def violations_small() -> None:
    cap = Capture(seed=1)
    tcp_session(cap, USER1, N1, 443)  # allowed (https-from-users)
    tcp_session(cap, N1, ADMIN, 22)  # wrong-direction
    tcp_session(cap, USER1, N2, 5432)  # unexpected-source
    tcp_session(cap, USER1, N3, 8443)  # unexpected-port
    tcp_session(cap, STRAY_CLIENT, STRAY_SERVER, 80)  # out-of-scope
    write_pcap(cap, "violations-small.pcap")
    write_text("violations-small.inventory.yaml", inventory("violations-small.pcap", CLIENT_ROLES))


def midstream() -> None:
    cap = Capture(seed=2)
    tcp_midstream(cap, USER1, N1, 443)  # port heuristic: allowed (https-from-users)
    tcp_midstream(cap, USER1, N2, 8443)  # port heuristic: unexpected-port, a warning
    tcp_midstream(cap, N1, ADMIN, 22)  # port heuristic: wrong-direction, only a warning
    write_pcap(cap, "midstream.pcap")
    write_text("midstream.inventory.yaml", inventory("midstream.pcap", CLIENT_ROLES))


def one_way_span() -> None:
    cap = Capture(seed=3)
    for client, server, port in [
        (N1, N2, 2100),  # oreo-rpc (required)
        (N2, N3, 2181),  # zookeeper-client (required)
        (N3, N1, 5432),  # postgres (required)
        (USER1, N1, 443),  # https-from-users
        (ADMIN, N2, 22),  # ssh-from-admins
        (USER2, N3, 8443),  # unexpected-port
    ]:
        tcp_session(cap, client, server, port, client_side_only=True)
    write_pcap(cap, "one-way-span.pcap")
    write_text("one-way-span.inventory.yaml", inventory("one-way-span.pcap", CLIENT_ROLES))


def multi_link() -> None:
    cap = Capture(seed=4)
    # Interface 0: a span port on the cluster switch (Ethernet).
    tcp_session(cap, N1, N2, 2100)  # oreo-rpc
    tcp_session(cap, USER1, N1, 443)  # https-from-users
    # Interface 1: `tcpdump -i any` on node 3 (Linux cooked capture).
    tcp_session(cap, ADMIN, N3, 22, iface=1)  # ssh-from-admins
    tcp_session(cap, N3, LDAP_SERVER, 636, iface=1)  # ldap
    udp_exchange(cap, N3, NTP_SERVER, 123, ntp(3), ntp(4), iface=1)  # ntp
    tcp_session(cap, N3, IRC_HOST, 6667, iface=1)  # unexpected-port
    interfaces = [
        Interface(LINKTYPE_ETHERNET, "span0", 6, lambda f: bytes(ethernet(f))),
        Interface(LINKTYPE_LINUX_SLL, "any", 9, lambda f: linux_sll(f, local=N3)),
    ]
    write_pcapng(cap, "multi-link.pcapng", interfaces)
    roles = CLIENT_ROLES | {"ldap-server": LDAP_SERVER, "ntp-server": NTP_SERVER}
    write_text("multi-link.inventory.yaml", inventory("multi-link.pcapng", roles))


def main() -> None:
    thoughtspot_demo()
    violations_small()
    midstream()
    one_way_span()
    multi_link()


if __name__ == "__main__":
    main()
