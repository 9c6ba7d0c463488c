"""Write a capture in which clients name a role's hostname in many batches: each
flow one TLS ClientHello whose SNI is `--name` (a hostname the bundled
`thoughtspot` matrix gives a role), followed by `--filler` bulk segments of
zero bytes (no name in them), so that every 8 MB batch holds a few thousand
claims — the case where collecting the claims batch by batch must not cost the
square of the batches.

    python benchmarks/gen_names.py OUT.pcap [--flows 1000000] [--filler 1]
        [--name api.mixpanel.com]
"""

from __future__ import annotations

import argparse
import struct

START = 1_709_287_200  # 2024-03-01T10:00:00Z
SERVER = bytes([203, 0, 113, 10])


def client_hello(sni: str) -> bytes:
    """A TLS record holding a ClientHello with `sni` and the usual extensions."""

    def ext(kind: int, body: bytes) -> bytes:
        return struct.pack(">HH", kind, len(body)) + body

    name = sni.encode()
    entry = b"\x00" + struct.pack(">H", len(name)) + name
    exts = ext(0, struct.pack(">H", len(entry)) + entry) + ext(23, b"")
    exts += ext(43, b"\x04\x03\x04\x03\x03")  # TLS 1.3, 1.2
    exts += ext(51, struct.pack(">HHH", 34, 0x1D, 32) + bytes(32))  # a key share
    body = (
        b"\x03\x03"
        + bytes(32)
        + b"\x20"
        + bytes(32)
        + b"\x00\x06\x13\x01\x13\x02\xc0\x2f\x01\x00"
        + struct.pack(">H", len(exts))
        + exts
    )
    message = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack(">H", len(message)) + message


def frame(src: bytes, dst: bytes, sport: int, dport: int, flags: int, payload: bytes) -> bytes:
    """Ethernet, IPv4 and TCP headers (checksums left zero: nothing checks them)."""
    tcp = struct.pack(">HHIIBBHHH", sport, dport, 1, 1, 0x50, flags, 65535, 0, 0)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 0, 0x4000, 64, 6, 0, src, dst)
    return b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00" + ip + tcp + payload


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--flows", type=int, default=1_000_000)
    ap.add_argument("--filler", type=int, default=1, help="bulk segments after each hello")
    ap.add_argument("--name", default="api.mixpanel.com")
    args = ap.parse_args()
    hello = client_hello(args.name)
    bulk = bytes(1400)
    with open(args.out, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        chunk = []
        for k in range(args.flows):
            client = bytes([10, 40, (k >> 8) & 0xFF, k & 0xFF])
            sport = 1024 + (k // 65536) * 7 % 60000
            us = k * 20
            packets = [frame(client, SERVER, sport, 443, 0x18, hello)]
            packets += [frame(SERVER, client, 443, sport, 0x18, bulk)] * args.filler
            for j, data in enumerate(packets):
                t, n = us + j, len(data)
                head = struct.pack("<IIII", START + t // 1_000_000, t % 1_000_000, n, n)
                chunk.append(head + data)
            if len(chunk) > 100_000:
                fh.write(b"".join(chunk))
                chunk = []
        fh.write(b"".join(chunk))


if __name__ == "__main__":
    main()
