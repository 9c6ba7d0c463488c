"""The server name in a QUIC client's Initial packets (RFC 9000, 9001; v2: RFC 9369).

An Initial packet is encrypted with keys derived from its own Destination
Connection ID, so any observer can read it: strip header protection (AES-ECB
of a sample), decrypt the payload (AES-GCM, its tag not checked: the name is
read, never trusted), gather the CRYPTO frames, and read the ClientHello they
carry (`tls.client_hello`). A ClientHello may span several Initial packets
and its CRYPTO frames come in any order: `initials` takes the packets of one
batch, puts the frames of each connection (client, server, DCID) in place by
offset, and reads the hello from what arrived. The ciphers run vectorized
over all packets of the batch (`aes.py`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import numpy as np

from portmatrix.decode import aes
from portmatrix.decode.tls import CUT, DAMAGED, OK, Hello, client_hello

V1, V2 = 0x00000001, 0x6B3343CF
SALTS = {
    V1: bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"),
    V2: bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"),
}
LABELS = {V1: "quic ", V2: "quicv2 "}
INITIAL_TYPE = {V1: 0, V2: 1}  # the long-header packet type of an Initial
MIN_DATAGRAM = 1200  # clients pad the datagrams of their Initials to this (RFC 9000, 14.1)
MAX_CRYPTO = 1 << 14  # bytes of a connection's CRYPTO stream gathered at most
PADDING, PING, ACK, ACK_ECN, CRYPTO = 0x00, 0x01, 0x02, 0x03, 0x06


def is_initial_start(head: bytes) -> bool:
    """Do these first bytes start a long-header QUIC Initial of a version we read?"""
    if len(head) < 6 or head[0] & 0xC0 != 0xC0:
        return False
    version = int.from_bytes(head[1:5], "big")
    return version in INITIAL_TYPE and (head[0] >> 4) & 3 == INITIAL_TYPE[version]


@dataclass
class Keys:
    key: bytes
    iv: bytes
    hp: bytes


def _expand_label(secret: bytes, label: str, length: int) -> bytes:
    """HKDF-Expand-Label of TLS 1.3 (RFC 8446, 7.1) with an empty context."""
    full = b"tls13 " + label.encode()
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(secret, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def client_keys(dcid: bytes, version: int = V1) -> Keys:
    """The client's Initial keys for this Destination Connection ID."""
    initial = hmac.new(SALTS[version], dcid, hashlib.sha256).digest()
    secret = _expand_label(initial, "client in", 32)
    prefix = LABELS[version]
    return Keys(
        _expand_label(secret, prefix + "key", 16),
        _expand_label(secret, prefix + "iv", 12),
        _expand_label(secret, prefix + "hp", 16),
    )


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise IndexError("varint past the end")
    size = 1 << (data[pos] >> 6)
    if pos + size > len(data):
        raise IndexError("varint past the end")
    value = data[pos] & 0x3F
    for k in range(1, size):
        value = (value << 8) | data[pos + k]
    return value, pos + size


@dataclass
class _Packet:
    """One Initial, its header read: where the protected parts are."""

    item: int  # which of the caller's packets
    conn: tuple  # (caller's connection key, DCID)
    data: bytes
    version: int
    pn_offset: int
    end: int  # end of this packet (a datagram may coalesce more after it)


def _header(item: int, key, data: bytes) -> _Packet | None:
    """The long header of an Initial, or None when it is not a readable one."""
    if not is_initial_start(data[:6]):
        return None
    try:
        version = int.from_bytes(data[1:5], "big")
        dcid_len = data[5]
        if dcid_len > 20:
            return None
        dcid = data[6 : 6 + dcid_len]
        pos = 6 + dcid_len
        scid_len = data[pos]
        if scid_len > 20:
            return None
        pos += 1 + scid_len
        token, pos = _varint(data, pos)
        pos += token
        length, pos = _varint(data, pos)
    except IndexError:
        return None
    if length < 20 or pos + length > len(data) or len(dcid) != dcid_len:
        return None
    return _Packet(item, (key, dcid), data, version, pos, pos + length)


def initials(packets: list[tuple[object, bytes]]) -> dict[int, Hello]:
    """Read the ClientHellos in QUIC Initial datagrams: `packets` are (connection
    key, UDP payload), in capture order. Returns, for the first packet of each
    connection (client, server, DCID), the hello its Initials carry; DAMAGED for
    packets that are no readable Initial and connections whose frames were not
    CRYPTO frames (not decrypted right); CUT when the hello goes on past what
    arrived or its start is missing."""
    heads = [h for i, (key, data) in enumerate(packets) if (h := _header(i, key, data))]
    out = {i: Hello(DAMAGED) for i in range(len(packets))}
    for h in heads:
        del out[h.item]
    streams: dict[tuple, tuple[bytearray, bytearray]] = {}
    first: dict[tuple, int] = {}
    damaged: set[tuple] = set()
    for head, payload in zip(heads, _decrypt(heads) if heads else [], strict=True):
        first.setdefault(head.conn, head.item)
        stream = streams.setdefault(head.conn, (bytearray(), bytearray()))
        if payload is None or not _crypto_frames(payload, *stream):
            damaged.add(head.conn)
    for conn, item in first.items():
        data, have = streams[conn]
        prefix = bytes(data[: have.find(0) if 0 in have else len(have)])
        hello = client_hello(prefix) if prefix else Hello(CUT)
        if conn in damaged and hello.status != OK:
            hello = Hello(DAMAGED)
        out[item] = hello
    return out


def _decrypt(heads: list[_Packet]) -> list[bytes | None]:
    """The decrypted payload of each Initial (None: too short to hold a sample)."""
    keys = [client_keys(h.conn[1], h.version) for h in heads]
    hp = aes.expand(np.frombuffer(b"".join(k.hp for k in keys), np.uint8).reshape(-1, 16))
    samples = []
    for h in heads:
        sample = h.data[h.pn_offset + 4 : h.pn_offset + 20]
        samples.append(sample if len(sample) == 16 else bytes(16))
    masks = aes.encrypt(hp, np.frombuffer(b"".join(samples), np.uint8).reshape(-1, 16))
    # Counter blocks of every payload, all packets at once.
    nonces, owners, counters, spans = [], [], [], []
    for k, (h, key) in enumerate(zip(heads, keys, strict=True)):
        mask = masks[k].tobytes()
        first = h.data[0] ^ (mask[0] & 0x0F)
        pn_len = (first & 3) + 1
        pn_bytes = bytes(
            a ^ b
            for a, b in zip(h.data[h.pn_offset : h.pn_offset + pn_len], mask[1:], strict=False)
        )
        pn = int.from_bytes(pn_bytes, "big")
        start, stop = h.pn_offset + pn_len, h.end - 16  # the GCM tag is the last 16 bytes
        spans.append((start, stop) if stop > start else None)
        nonce = bytes(a ^ b for a, b in zip(key.iv, pn.to_bytes(12, "big"), strict=True))
        blocks = max(0, (stop - start + 15) // 16)
        nonces.append(nonce)
        owners.append(np.full(blocks, k))
        counters.append(np.arange(2, blocks + 2))
    owner = np.concatenate(owners) if owners else np.zeros(0, int)
    counter = np.concatenate(counters) if counters else np.zeros(0, int)
    if not len(owner):
        return [None] * len(heads)
    round_keys = aes.expand(np.frombuffer(b"".join(k.key for k in keys), np.uint8).reshape(-1, 16))
    blocks = np.zeros((len(owner), 16), np.uint8)
    blocks[:, :12] = np.frombuffer(b"".join(nonces), np.uint8).reshape(-1, 12)[owner]
    blocks[:, 12:] = counter.astype(">u4").view(np.uint8).reshape(-1, 4)
    stream = aes.encrypt(round_keys[owner], blocks).reshape(-1)
    out: list[bytes | None] = []
    at = 0
    for span in spans:
        if span is None:
            out.append(None)
            continue
        start, stop = span
        size = stop - start
        h = heads[len(out)]
        cipher = np.frombuffer(h.data, np.uint8, count=size, offset=start)
        out.append((cipher ^ stream[at : at + size]).tobytes())
        at += (size + 15) // 16 * 16
    return out


def _crypto_frames(payload: bytes, stream: bytearray, have: bytearray) -> bool:
    """Put the CRYPTO frames of one decrypted Initial into `stream` by offset (`have`
    marks the bytes that arrived); False when a frame that has no place in an
    Initial says the decryption went wrong."""
    pos = 0
    try:
        while pos < len(payload):
            kind = payload[pos]
            pos += 1
            if kind in (PADDING, PING):
                continue
            if kind in (ACK, ACK_ECN):
                _, pos = _varint(payload, pos)  # largest acknowledged
                _, pos = _varint(payload, pos)  # delay
                ranges, pos = _varint(payload, pos)
                _, pos = _varint(payload, pos)  # first range
                for _ in range(min(ranges, 256) * 2 + (3 if kind == ACK_ECN else 0)):
                    _, pos = _varint(payload, pos)
                continue
            if kind != CRYPTO:
                return False
            offset, pos = _varint(payload, pos)
            size, pos = _varint(payload, pos)
            if pos + size > len(payload) or offset + size > MAX_CRYPTO:
                return False
            if len(stream) < offset + size:
                stream.extend(bytes(offset + size - len(stream)))
                have.extend(bytes(offset + size - len(have)))
            stream[offset : offset + size] = payload[pos : pos + size]
            have[offset : offset + size] = b"\x01" * size
            pos += size
    except IndexError:
        return False
    return True
