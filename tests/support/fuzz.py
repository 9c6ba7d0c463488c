"""Mutated captures, Zeek logs and flow logs, and the run that must survive each of them: the
CI fuzz test (`tests/property/test_fuzz.py`, a few hundred a run) and the large
run (`benchmarks/fuzz.py`, tens of thousands) share this.

Seeds are small captures of every shape the readers know (pcap both byte
orders and resolutions, pcapng with sections, interfaces, statistics, simple
and obsolete blocks, every link type and encapsulation, DNS answers, fragments)
and the hostile shapes of `support.hostile`. A mutation flips bits, writes
interesting values into the length, interface and time fields of records and
blocks, cuts, splices, inserts crafted blocks, and sometimes gzips the result.
Everything is drawn from one `random.Random(seed)`: a case is reproduced from
its seed alone.

`survive(path, workdir)` runs a case as the commands would: `check` rendered
in every format, the flow table in every format, `check --flows`, and
`evidence` of every flow read back. Any exception but a PortmatrixError (a
one-line error, exit status 2) is a failure.
"""

from __future__ import annotations

import gzip
import random
import struct
from functools import cache
from pathlib import Path

from portmatrix.testing.captures import T0, Pcapng, pcap_bytes

INTERESTING_32 = (
    0,
    1,
    4,
    12,
    16,
    20,
    28,
    0x7F,
    0xFF,
    0xFFFF,
    0x10000,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFF0,
    0xFFFF_FFFF,
    0x0A0D_0D0A,
    0x1A2B_3C4D,
)
HOSTILE_NAMES = (
    b'=HYPERLINK("http://evil.example","x")',
    b"\x1b]0;pwned\x07\x1b[2J",
    b"a\xe2\x80\xa8b\xc2\x85c",
    b"\xff\xfe\x00",
    b"x" * 300,
    b"",
)


@cache
def capture_seeds() -> list[bytes]:
    """The captures every mutation starts from."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, fragment

    from portmatrix.testing.captures import ether, ip, tcp_session
    from support import encapsulated, hostile
    from support.paths import CAPTURES, SHARED_PCAPS

    session = [ether(p) for p in tcp_session("10.0.2.7", "10.0.0.1", 40000, 443)]
    dns = ether(
        IP(src="10.0.0.53", dst="10.0.2.7")
        / UDP(sport=53, dport=5353)
        / DNS(
            id=1,
            qr=1,
            qd=[DNSQR(qname="api.example.com")],
            an=[
                DNSRR(rrname="api.example.com", type="CNAME", rdata="edge.example.net"),
                DNSRR(rrname="edge.example.net", rdata="192.0.2.7"),
            ],
        )
    )
    probe = IP(src="10.0.2.7", dst="10.0.0.1") / UDP(sport=3, dport=4)
    error = ether(ip("10.0.0.1", "10.0.2.7") / ICMP(type=3, code=3) / IPerror(bytes(probe)))
    frags = [ether(f) for f in fragment(IP(src="10.0.2.7", dst="10.0.0.1") / UDP() / bytes(3000))]
    syn = ether(ip("10.0.2.7", "10.0.0.1") / TCP(sport=1, dport=22, flags="S"))
    seeds = [
        pcap_bytes([*session, dns, error, *frags]),
        pcap_bytes(session, little=False, nanos=True),
        pcap_bytes([bytes(s) for s in session], snaplen=60),
    ]
    w = Pcapng()
    eth = w.interface(1, name="eth0", tsresol=9)
    raw = w.interface(101, tsresol=0x80 | 20, tsoffset=5)
    w.packets(session, iface=eth)
    w.stats(eth, received=10, dropped=2)
    w.simple(bytes(syn))
    w.obsolete(bytes(syn), iface=eth)
    w.packet(bytes(ip("10.0.2.7", "10.0.0.1") / TCP(sport=2, dport=22, flags="S")), iface=raw)
    w.section(little=False)
    w.interface(1, name="eth1")
    w.packet(dns)
    w.block(0x0BAD, b"unknown")
    seeds.append(w.bytes())
    for name in ("nflog", "gre-teb", "erspan-3", "mpls", "radiotap", "teredo", "pppoe", "ppi"):
        linktype, frames = encapsulated.frames(name)
        seeds.append(pcap_bytes(frames, linktype=linktype))
    seeds.append(pcap_bytes(hostile.deep_frames()))
    seeds.append(pcap_bytes([_dns_frame()] * 3))
    seeds.append(hostile.interface_storm(30))
    seeds.append(hostile.statistics_storm(30))
    for path in sorted(CAPTURES.glob("*.pcap*")):
        if path.stat().st_size <= 80_000:
            seeds.append(path.read_bytes())
    for name in (
        "PcapPlusPlus__many_interfaces-1.pcapng",
        "zeek__gre-sample.pcap",
        "zeek__http-qinq-0.pcap",
        "zeek__mixed-vlan-mpls.pcap",
        "libpcap__ipv6_ext_headers.pcap",
        "tcpdump__tcp-handshake-nano.pcap",
        "chrissanders-packets__http_ip4and6.pcapng",
    ):
        if (SHARED_PCAPS / name).exists():
            seeds.append((SHARED_PCAPS / name).read_bytes())
    return seeds


def _dns_frame() -> bytes:
    from scapy.layers.inet import UDP

    from portmatrix.testing.captures import ether, ip
    from support import hostile

    message = hostile.dns_pointer_message(40, 20)
    return bytes(ether(ip("10.0.0.53", "10.0.2.7") / UDP(sport=53, dport=5353) / message))


# Mutations of captures ------------------------------------------------------------


def _record_starts(data: bytes) -> list[int]:
    """Where records (pcap) or blocks (pcapng) start, as far as the lengths say."""
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        out, off = [], 0
        while off + 12 <= len(data) and len(out) < 5000:
            out.append(off)
            endian = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
            length = struct.unpack_from(endian + "I", data, off + 4)[0]
            if length < 12:
                break
            off += length
        return out or [0]
    if len(data) < 24:
        return [0]
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    out, off = [0], 24
    while off + 16 <= len(data) and len(out) < 5000:
        out.append(off)
        off += 16 + struct.unpack_from(endian + "I", data, off + 8)[0]
    return out


def _field(rng: random.Random, buf: bytearray) -> bytearray:
    """An interesting 32-bit value into a header field of a record or block."""
    start = rng.choice(_record_starts(bytes(buf)))
    at = start + rng.choice((0, 4, 8, 12, 16, 20, 24))
    if at + 4 <= len(buf):
        value = rng.choice((*INTERESTING_32, rng.getrandbits(32), len(buf) - at))
        struct.pack_into(rng.choice("<>") + "I", buf, at, value & 0xFFFF_FFFF)
    return buf


def _flip(rng: random.Random, buf: bytearray) -> bytearray:
    if buf:
        at = rng.randrange(len(buf))
        buf[at] ^= 1 << rng.randrange(8)
    return buf


def _byte(rng: random.Random, buf: bytearray) -> bytearray:
    if buf:
        # Headers are near the start of records: aim there half the time.
        starts = _record_starts(bytes(buf))
        base = rng.choice(starts) if rng.random() < 0.5 else 0
        at = min(len(buf) - 1, base + rng.randrange(min(len(buf), 96)))
        buf[at] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
    return buf


def _cut(rng: random.Random, buf: bytearray) -> bytearray:
    return buf[: rng.randrange(len(buf) + 1)]


def _splice(rng: random.Random, buf: bytearray) -> bytearray:
    """Repeat a piece of the file (records or blocks seen again, or half of one)."""
    if len(buf) < 2:
        return buf
    a = rng.randrange(len(buf))
    b = min(len(buf), a + rng.randrange(1, 2048))
    at = rng.randrange(len(buf))
    return buf[:at] + buf[a:b] * rng.choice((1, 1, 2, 50)) + buf[at:]


def _insert(rng: random.Random, buf: bytearray) -> bytearray:
    at = rng.randrange(len(buf) + 1)
    return buf[:at] + bytearray(rng.randbytes(rng.randrange(1, 64))) + buf[at:]


def _block(rng: random.Random, buf: bytearray) -> bytearray:
    """A crafted pcapng block at a block boundary: an interface description with
    any resolution, offset and name, statistics, a section, a packet naming any
    interface with any time."""
    if buf[:4] != b"\x0a\x0d\x0d\x0a":
        return _field(rng, buf)
    little = buf[8:12] == b"\x4d\x3c\x2b\x1a"
    w = Pcapng()
    w.blocks.clear()
    w.endian = "<" if little else ">"
    kind = rng.randrange(4)
    if kind == 0:
        w.interface(
            rng.choice((1, 101, 0, 113, 239, 147, rng.randrange(65536))),
            tsresol=rng.choice((None, 0, 6, 9, 19, 20, 0x80, 0x80 | 63, 0xFF, rng.randrange(256))),
            tsoffset=rng.choice((None, 0, -(1 << 63), (1 << 63) - 1, rng.getrandbits(63))),
            name=rng.choice(HOSTILE_NAMES).decode("latin-1"),
            snaplen=rng.choice((0, 0xFFFF_FFFF, 65535)),
        )
        w.blocks = w.blocks[-1:]  # the description alone, no section header
    elif kind == 1:
        w.ifaces = [6] * 8
        w.stats(
            rng.randrange(12),
            received=rng.getrandbits(64),
            dropped=rng.choice((None, rng.getrandbits(64))),
        )
    elif kind == 2:
        w.section(little=rng.random() < 0.5)
    else:
        from portmatrix.testing.captures import ether, ip

        w.ifaces = [6] * 8
        data = bytes(ether(ip("10.0.2.7", "10.0.0.1")))
        w.packet(
            data,
            iface=rng.choice((0, 1, 7, 0xFFFF, 0xFFFF_FFFF)),
            raw_ticks=rng.choice((0, T0, T0 // 1000, (1 << 64) - 1, rng.getrandbits(64))),
        )
    starts = _record_starts(bytes(buf))[1:] or [len(buf)]
    at = rng.choice(starts)
    return buf[:at] + bytearray(b"".join(w.blocks)) * rng.choice((1, 1, 3, 200)) + buf[at:]


MUTATIONS = (_field, _field, _flip, _byte, _byte, _cut, _splice, _insert, _block, _block)


def mutate_capture(seed: int) -> bytes:
    """A mutated capture, the same for the same seed."""
    rng = random.Random(seed)
    seeds = capture_seeds()
    buf = bytearray(seeds[rng.randrange(len(seeds))])
    for _ in range(rng.choice((1, 1, 2, 2, 3, 5, 8))):
        buf = rng.choice(MUTATIONS)(rng, buf)
    data = bytes(buf)
    if rng.random() < 0.08:
        data = gzip.compress(data, mtime=0)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data) + 1)]
    return data


# Mutations of Zeek logs -----------------------------------------------------------

ZEEK_VALUES = (
    "nan",
    "NaN",
    "inf",
    "-inf",
    "-1",
    "1e400",
    "9" * 40,
    "",
    "-",
    "0",
    "70000",
    "1.5",
    "2262-04-12T00:00:00Z",
    "\x1b[2J",
    "=cmd|' /C calc'!A0",
    "ü\u2028",
    "::ffff:10.0.0.1",
    "300.1.1.1",
)


@cache
def zeek_seed() -> list[str]:
    from support.paths import REPO

    return (
        (REPO / "tests" / "fixtures" / "zeek" / "violations-small.conn.log")
        .read_text(encoding="utf-8")
        .splitlines()
    )


def mutate_zeek(seed: int) -> bytes:
    """A mutated conn.log (TSV or JSON lines), the same for the same seed."""
    import json

    rng = random.Random(seed)
    lines = list(zeek_seed())
    header = [x for x in lines if x.startswith("#")]
    fields = next(x for x in header if x.startswith("#fields")).split("\t")[1:]
    records = [x.split("\t") for x in lines if not x.startswith("#")]
    for _ in range(rng.choice((1, 2, 3, 6))):
        rec = rng.choice(records)
        rec[rng.randrange(len(rec))] = rng.choice(ZEEK_VALUES)
    if rng.random() < 0.3:
        records += [list(rng.choice(records)) for _ in range(rng.randrange(1, 50))]
    if rng.random() < 0.15:
        header = [
            rng.choice(("#separator", "#separator \\x", "#separator \\x2c", "#separator  "))
            if h.startswith("#separator")
            else h
            for h in header
        ]
    if rng.random() < 0.1:
        header = [h for h in header if not h.startswith("#fields")]
    if rng.random() < 0.4:  # JSON lines, with what JSON can hold besides
        out = []
        for rec in records:
            doc: dict = dict(zip(fields, rec, strict=False))
            for k in ("ts", "duration", "orig_pkts", "id.orig_p"):
                if k in doc and rng.random() < 0.3:
                    doc[k] = rng.choice((float("nan"), float("inf"), 10**30, -5, [1], {"a": 1}))
            out.append(json.dumps(doc))
        if rng.random() < 0.1:
            out.append('{"a": ' + "[" * 5000 + "]" * 5000 + "}")
        text = "\n".join(out) + "\n"
    else:
        text = "\n".join(header + ["\t".join(r) for r in records]) + "\n"
    return damaged(rng, text.encode("utf-8"), flip=0.1, flips=1, cut=0.05, packed=0.1)


# Flow logs ------------------------------------------------------------------------

FLOWLOG_VALUES = (
    "-",
    "",
    "abc",
    "-5",
    "300",
    "65536",
    "99999999999999999999999",
    "1.2.3",
    "10.0.0.256",
    "010.0.0.1",
    "::1",
    "fe80::1%eth0",
    "NODATA",
    "SKIPDATA",
    "REJECT",
    "ü\u2028",
    "\t",
    "x" * 300,
)
JSON_VALUES = (None, True, -1, 10**30, 1.5, float("nan"), "", "x" * 300, [], {}, [1, "a"])


@cache
def flowlog_seeds() -> dict[str, str]:
    """AWS (v5 and the headerless default), Azure (VNet and NSG) and GCP (lines and
    array) logs of violations-small.pcap's flows, at two observers."""
    import json
    import tempfile

    from portmatrix.check import run_check
    from support import flowlogs as fl
    from support.paths import CAPTURES

    pcap, inv = CAPTURES / "violations-small.pcap", CAPTURES / "violations-small.inventory.yaml"
    flows = run_check([str(pcap)], ["thoughtspot"], str(inv)).traffic.flows
    recs = fl.logged(flows, observers=("eni-0a0a0a0a0a0a0a0a0", "eni-0b0b0b0b0b0b0b0b0"))
    out = {"aws": fl.aws_text(recs), "aws-default": fl.aws_text(recs, fl.DEFAULT, header=False)}
    with tempfile.TemporaryDirectory() as tmp:
        for name, write, kw in (
            ("azure", fl.write_azure, {}),
            ("azure-nsg", fl.write_azure, {"vnet": False}),
            ("gcp", fl.write_gcp, {}),
            ("gcp-array", fl.write_gcp, {"array": True}),
        ):
            out[name] = write(Path(tmp) / "log.json", recs, **kw).read_text(encoding="utf-8")
    json.loads(out["azure"])  # the seeds are what their readers take
    return out


def _mutate_json(rng: random.Random, value, depth: int = 0):
    """The document with a few values, tuples and keys changed."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if rng.random() < 0.03:
                continue  # a key left out
            out[k] = rng.choice(JSON_VALUES) if rng.random() < 0.04 else _mutate_json(rng, v, depth)
        return out
    if isinstance(value, list):
        items = [_mutate_json(rng, v, depth + 1) for v in value]
        if items and rng.random() < 0.1:
            items.append(rng.choice(items))
        return items
    if isinstance(value, str) and "," in value and rng.random() < 0.2:  # an Azure tuple
        parts = value.split(",")
        parts[rng.randrange(len(parts))] = rng.choice(FLOWLOG_VALUES).replace(",", ";")
        return ",".join(parts[: rng.choice((len(parts), len(parts), len(parts) - 1))])
    if isinstance(value, str) and rng.random() < 0.05:
        return rng.choice(FLOWLOG_VALUES)
    return value


def mutate_flowlog(seed: int) -> bytes:
    """A mutated cloud flow log (AWS text, Azure or GCP JSON) or Zeek conn.log, the
    same for the same seed: values of the wrong kind or shape, lines dropped,
    repeated and cut, then sometimes bytes flipped, the file cut, or gzipped."""
    import json

    rng = random.Random(seed)
    kind = rng.choice(
        ("aws", "aws", "aws-default", "azure", "azure-nsg", "gcp", "gcp-array", "zeek")
    )
    if kind == "zeek":
        return mutate_zeek(seed)
    text = flowlog_seeds()[kind]
    if kind.startswith("aws"):
        lines = text.splitlines()
        for _ in range(rng.choice((1, 2, 4, 8))):
            at = rng.randrange(len(lines))
            fields = lines[at].split(" ")
            what = rng.random()
            if what < 0.6:
                fields[rng.randrange(len(fields))] = rng.choice(FLOWLOG_VALUES)
            elif what < 0.7:
                del fields[rng.randrange(len(fields))]
            elif what < 0.8:
                lines.insert(at, rng.choice(("", " ", "#", "version", lines[0])))
            lines[at] = " ".join(fields)
        if rng.random() < 0.2:
            lines += [rng.choice(lines) for _ in range(rng.randrange(1, 30))]
        if rng.random() < 0.2:
            rng.shuffle(lines)
        text = ("\r\n" if rng.random() < 0.2 else "\n").join(lines) + "\n"
    elif kind == "gcp":
        lines = [
            json.dumps(_mutate_json(rng, json.loads(x))) if x.strip() else x
            for x in text.splitlines()
        ]
        text = "\n".join(lines) + "\n"
    else:
        text = json.dumps(_mutate_json(rng, json.loads(text)))
        if rng.random() < 0.05:
            text = '{"records": ' + "[" * 5000 + "]" * 5000 + "}"
    data = text.encode("utf-8")
    return damaged(rng, data, flip=0.15, flips=3, cut=0.1, packed=0.2, packed_cut=0.2)


def damaged(rng, data: bytes, flip, flips, cut, packed, packed_cut=0.0) -> bytes:
    """A text file's damage, each with its chance: up to `flips` bytes changed,
    cut short, gzipped (and the gzip cut short). The draws are always made in
    this order, so a seed names the same case."""
    if rng.random() < flip:
        buf = bytearray(data)
        for _ in range(rng.randrange(1, flips + 1) if flips > 1 else 1):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        data = bytes(buf)
    if rng.random() < cut:
        data = data[: rng.randrange(len(data) + 1)]
    if rng.random() < packed:
        data = gzip.compress(data, mtime=0)
        if packed_cut and rng.random() < packed_cut:
            data = data[: rng.randrange(len(data) + 1)]
    return data


# Surviving a case -----------------------------------------------------------------

SITE_MATRIX = """\
name: fuzz
roles:
  nodes: Nodes
  users: Users
rules:
  - {id: ssh, service: SSH, proto: tcp, ports: 22, from: users, to: nodes}
  - {id: web, service: HTTPS, proto: tcp, ports: 443, from: users, to: nodes, required: true}
  - {id: dns, service: DNS, proto: udp, ports: 53, from: any, to: nodes}
  - {id: ping, service: ICMP, proto: icmp, from: nodes, to: nodes, initiator: either}
"""
SITE_INVENTORY = """\
roles:
  nodes: [10.0.0.0/24, 10.20.0.0/24, "fd00::/64", "2001:db8::53", api.example.com]
  users: [10.0.2.0/24, 10.40.0.0/16, 10.1.0.1]
"""


def site(folder: Path) -> tuple[str, str]:
    """The matrix and inventory every case is checked against."""
    folder.mkdir(parents=True, exist_ok=True)
    matrix, inventory = folder / "fuzz-matrix.yaml", folder / "fuzz-inventory.yaml"
    matrix.write_text(SITE_MATRIX, encoding="utf-8")
    inventory.write_text(SITE_INVENTORY, encoding="utf-8")
    return str(matrix), str(inventory)


def survive(path: str, workdir: Path, zeek: bool = False, records: str | None = None) -> str:
    """Run the case as every command would. Returns "ok", or "error: ..." for a
    one-line error (PortmatrixError); anything else raises. `records`: the case is
    flow records of that format ("auto": told from the content)."""
    from portmatrix.check import run_check
    from portmatrix.errors import PortmatrixError
    from portmatrix.evidence import write_evidence
    from portmatrix.report import CHECK_FORMATS
    from portmatrix.report.flow_rows import flow_columns
    from portmatrix.report.flows_view import FORMATS as FLOW_FORMATS
    from portmatrix.report.verdict_flows import render_flows
    from portmatrix.sources.capture import Capture

    matrix, inventory = site(workdir)
    try:
        records = "zeek" if zeek else records
        result = run_check([path], [matrix], inventory, records=records)
    except PortmatrixError as exc:
        return f"error: {exc}"
    for render in CHECK_FORMATS.values():
        render(result)
    traffic = result.traffic
    columns = flow_columns(traffic.flows, False, traffic.captures)
    for render in FLOW_FORMATS.values():
        render(columns, traffic)
    render_flows(result, "flows.csv")
    render_flows(result, "flows.json")
    if records or not len(traffic.flows):
        return "ok"
    out = str(workdir / "evidence.pcapng")
    try:
        write_evidence(out, [path], traffic.flows, [])
    except PortmatrixError as exc:  # no packet belongs to them: a flow of ICMP errors
        return f"error: {exc}"
    evidence = Capture(out)
    read = sum(len(batch) for batch in evidence.batches())
    if evidence.info.truncated or not read:
        raise AssertionError(f"the evidence file cannot be read back: {evidence.info.truncated}")
    return "ok"
