"""AES-128 encryption of many blocks at once, each with its own key, in numpy.

QUIC protects its Initial packets with keys anyone can derive from the packet
itself (RFC 9001, 5.2): reading the server name in them takes AES-128 in ECB
(header protection) and counter mode (the payload, AES-GCM without checking
its tag: the name is read, not trusted). The standard library has no AES, and
these few packets do not earn a dependency: this is the textbook cipher
(FIPS-197) with its tables built at import, vectorized over blocks so a batch
of Initial packets is a few dozen array operations. Encryption only — counter
mode and header protection never decrypt a block.
"""

from __future__ import annotations

import numpy as np


def _sbox() -> np.ndarray:
    """The S-box from its definition: the inverse in GF(2^8), then the affine map."""
    exp, log = [0] * 255, [0] * 256
    x = 1
    for i in range(255):
        exp[i], log[x] = x, i
        x ^= (x << 1) ^ (0x11B if x & 0x80 else 0)  # times 3
    box = []
    for a in range(256):
        inv = exp[(255 - log[a]) % 255] if a else 0
        s = inv
        for shift in range(1, 5):
            s ^= ((inv << shift) | (inv >> (8 - shift))) & 0xFF
        box.append(s ^ 0x63)
    return np.array(box, np.uint32)


SBOX = _sbox()


def _xtime(a: np.ndarray) -> np.ndarray:
    return ((a << 1) ^ np.where(a & 0x80, 0x11B, 0)).astype(np.uint32) & 0xFF


_S2, _S3 = _xtime(SBOX), _xtime(SBOX) ^ SBOX
# T-tables: SubBytes, ShiftRows and MixColumns of one byte, as a column word.
T0 = (_S2 << 24) | (SBOX << 16) | (SBOX << 8) | _S3
T1 = (_S3 << 24) | (_S2 << 16) | (SBOX << 8) | SBOX
T2 = (SBOX << 24) | (_S3 << 16) | (_S2 << 8) | SBOX
T3 = (SBOX << 24) | (SBOX << 16) | (_S3 << 8) | _S2
RCON = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1B, 0x36]


def _words(blocks: np.ndarray) -> np.ndarray:
    """(n, 16) uint8 -> (n, 4) big-endian uint32 words."""
    b = blocks.astype(np.uint32)
    return (b[:, 0::4] << 24) | (b[:, 1::4] << 16) | (b[:, 2::4] << 8) | b[:, 3::4]


def _bytes(words: np.ndarray) -> np.ndarray:
    out = np.empty((len(words), 16), np.uint8)
    for k in range(4):
        out[:, k::4] = (words >> (24 - 8 * k)) & 0xFF
    return out


def expand(keys: np.ndarray) -> np.ndarray:
    """Round keys of AES-128: (n, 16) uint8 keys -> (n, 44) uint32 words."""
    w = np.zeros((len(keys), 44), np.uint32)
    w[:, :4] = _words(keys)
    for i in range(4, 44):
        t = w[:, i - 1]
        if i % 4 == 0:
            t = (t << 8 | t >> 24) & 0xFFFFFFFF
            t = (
                (SBOX[t >> 24] << 24)
                | (SBOX[(t >> 16) & 0xFF] << 16)
                | (SBOX[(t >> 8) & 0xFF] << 8)
                | SBOX[t & 0xFF]
            ) ^ (RCON[i // 4 - 1] << 24)
        w[:, i] = w[:, i - 4] ^ t
    return w


def encrypt(round_keys: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """Encrypt (n, 16) uint8 blocks, block i with round_keys[i] ((n, 44) from
    `expand`, repeated per block as needed): (n, 16) uint8."""
    s = _words(blocks) ^ round_keys[:, 0:4]
    for r in range(1, 10):
        c0, c1, c2, c3 = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
        s = (
            np.stack(
                [
                    T0[a >> 24] ^ T1[(b >> 16) & 0xFF] ^ T2[(c >> 8) & 0xFF] ^ T3[d & 0xFF]
                    for a, b, c, d in (
                        (c0, c1, c2, c3),
                        (c1, c2, c3, c0),
                        (c2, c3, c0, c1),
                        (c3, c0, c1, c2),
                    )
                ],
                axis=1,
            )
            ^ round_keys[:, 4 * r : 4 * r + 4]
        )
    c0, c1, c2, c3 = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
    last = (
        np.stack(
            [
                (SBOX[a >> 24] << 24)
                | (SBOX[(b >> 16) & 0xFF] << 16)
                | (SBOX[(c >> 8) & 0xFF] << 8)
                | SBOX[d & 0xFF]
                for a, b, c, d in (
                    (c0, c1, c2, c3),
                    (c1, c2, c3, c0),
                    (c2, c3, c0, c1),
                    (c3, c0, c1, c2),
                )
            ],
            axis=1,
        )
        ^ round_keys[:, 40:44]
    )
    return _bytes(last)
