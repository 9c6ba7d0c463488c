"""AES-128 in numpy: FIPS-197's vectors, and agreement with the `cryptography`
package's AES on many blocks, each under its own key."""

from __future__ import annotations

import numpy as np
import pytest

from portmatrix.decode import aes


def encrypt_one(key: str, block: str) -> str:
    keys = np.frombuffer(bytes.fromhex(key), np.uint8).reshape(1, 16)
    blocks = np.frombuffer(bytes.fromhex(block), np.uint8).reshape(1, 16)
    return aes.encrypt(aes.expand(keys), blocks).tobytes().hex()


@pytest.mark.parametrize(
    ("key", "plain", "cipher"),
    [
        # FIPS-197, appendix B and C.1
        ("2b7e151628aed2a6abf7158809cf4f3c", "3243f6a8885a308d313198a2e0370734",
         "3925841d02dc09fbdc118597196a0b32"),
        ("000102030405060708090a0b0c0d0e0f", "00112233445566778899aabbccddeeff",
         "69c4e0d86a7b0430d8cdb78070b4c55a"),
    ],
)  # fmt: skip
def test_fips_197_vectors(key, plain, cipher):
    assert encrypt_one(key, plain) == cipher


def test_sbox_is_the_standard_one():
    assert [int(aes.SBOX[i]) for i in (0x00, 0x01, 0x53, 0xFF)] == [0x63, 0x7C, 0xED, 0x16]
    assert sorted(aes.SBOX.tolist()) == list(range(256))  # a permutation


def test_many_blocks_under_many_keys_agree_with_cryptography():
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    rng = np.random.default_rng(7)
    keys = rng.integers(0, 256, (64, 16), dtype=np.uint8)
    blocks = rng.integers(0, 256, (64, 16), dtype=np.uint8)
    ours = aes.encrypt(aes.expand(keys), blocks)
    for k in range(64):
        enc = Cipher(algorithms.AES(keys[k].tobytes()), modes.ECB()).encryptor()
        assert ours[k].tobytes() == enc.update(blocks[k].tobytes()) + enc.finalize()


def test_round_keys_repeat_per_block():
    key = np.frombuffer(bytes(range(16)), np.uint8).reshape(1, 16)
    rk = aes.expand(key)
    blocks = np.zeros((3, 16), np.uint8)
    blocks[1, 0] = 1
    out = aes.encrypt(rk[[0, 0, 0]], blocks)
    assert out[0].tobytes() == out[2].tobytes() != out[1].tobytes()
