"""Text forms shared by every output: protocol names, addresses, timestamps."""

from __future__ import annotations

import json

import numpy as np

from portmatrix.addresses import to_text

PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp"}
PROTO_NUMBERS = {name: number for number, name in PROTO_NAMES.items()}


def printable(text: str | bytes, limit: int | None = None) -> str:
    """Text safe to show and to write into a report or a comment line: bytes
    decoded as UTF-8 (a bad sequence as U+FFFD), cut to `limit` bytes (or
    characters), every character that does not print as "?"."""
    if isinstance(text, bytes):
        text = text[:limit].decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


def service_text(proto: str, port: int | None) -> str:
    """A finding's service, as every output names it: tcp/443, icmp type 8, IP
    protocol 47; a protocol without a port (a rule's coverage) by its name."""
    if port is None:
        return proto if proto in PROTO_NUMBERS else f"IP protocol {proto}"
    if proto in ("icmp", "icmpv6"):
        return f"{proto} type {port}"
    return f"{proto}/{port}"


def proto_name(number: int) -> str:
    """tcp, udp, icmp, icmpv6, sctp, or the IP protocol number as text."""
    return PROTO_NAMES.get(number, str(number))


NAT = np.iinfo(np.int64).min  # numpy's "not a time"


def iso(ts: np.ndarray) -> np.ndarray:
    """ISO 8601 UTC strings with microseconds for nanosecond timestamps; "" for a
    time that is none (the readers keep times in range, but never print "NaTZ")."""
    ts = np.asarray(ts, np.int64)
    us = ts.astype("datetime64[ns]").astype("datetime64[us]")
    out = np.char.add(np.datetime_as_string(us, unit="us"), "Z")
    if (ts == NAT).any():
        out[ts == NAT] = ""
    return out


def address_texts(hi: np.ndarray, lo: np.ndarray) -> list[str]:
    """Text of each address, converting each distinct address once (distinct by a
    64-bit hash of the address, checked: equal hashes of different addresses fall
    back to comparing both halves)."""
    if not len(hi):
        return []
    from portmatrix.decode.keyhash import mix

    _, first, inverse = np.unique(mix(hi, lo), return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    if (hi[first][inverse] != hi).any() or (lo[first][inverse] != lo).any():
        pairs = np.stack([hi, lo], axis=1)
        _, first, inverse = np.unique(pairs, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
    names = np.array(
        [
            to_text((h << 64) | low)
            for h, low in zip(hi[first].tolist(), lo[first].tolist(), strict=True)
        ],
        dtype=object,
    )
    return names[inverse].tolist()


def json_text(doc, depth: int = 0) -> str:
    """JSON with the outer objects laid out key by key and lists item by item, each
    item on one line: readable, greppable and diffable, yet encoded by json's C
    encoder (`indent=` would fall back to its pure-Python one, 5x slower on a
    report with thousands of findings)."""
    pad, inner = " " * depth, " " * (depth + 1)
    if isinstance(doc, dict) and doc and depth < 2:
        items = [
            f"{inner}{_key_text(k)}: {json_text(v, depth + 1)}" for k, v in sorted(doc.items())
        ]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(doc, list) and any(isinstance(v, dict | list) for v in doc):
        items = [f"{inner}{json.dumps(v, sort_keys=True, ensure_ascii=False)}" for v in doc]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(doc, sort_keys=True, ensure_ascii=False)


def _key_text(key) -> str:
    """An object key as json writes it (True as "true", 1 as "1", ...)."""
    return json.dumps({key: 0}, ensure_ascii=False)[1:-4]
