"""auth.py: X25519 against known answers, and the key schedule's separations."""
import os

import pytest

from fedzo.edge.protocol.auth import (
    BASE_POINT,
    check_run_key,
    new_key_pair,
    rejoin_proof,
    rejoin_secret,
    session_master,
    shared_secret,
    x25519,
)

# Two key pairs and their shared secret, made with OpenSSL 3
# (`openssl genpkey -algorithm X25519`, `openssl pkeyutl -derive`).
A_PRIVATE = bytes.fromhex("00a7bb063fb6eeda3612812faa955b44d0e3a471d40e63d71b782e29a0ac9241")
A_PUBLIC = bytes.fromhex("646d885c9d71e0bce4621efa5f5352b020e99cadeef5d0bfb56e62962666292e")
B_PRIVATE = bytes.fromhex("08254bfd01d1df9149fea970ef9e7c17a0382f4c5a6469cea7b45fcd373d0355")
B_PUBLIC = bytes.fromhex("18f20545c3083d9b8997d5f58273eff53beb85949ba1fa00ed3a3de133be7a5e")
SHARED = bytes.fromhex("c6fe921d594aec379717d79e601509ce6e3c0c2505fd665545fc025d55e9810c")


def test_x25519_matches_openssl():
    assert x25519(A_PRIVATE, BASE_POINT) == A_PUBLIC
    assert x25519(B_PRIVATE, BASE_POINT) == B_PUBLIC
    assert x25519(A_PRIVATE, B_PUBLIC) == x25519(B_PRIVATE, A_PUBLIC) == SHARED


def test_fresh_key_pairs_agree():
    (a, a_share), (b, b_share) = new_key_pair(), new_key_pair()
    assert a_share != b_share
    assert shared_secret(a, b_share) == shared_secret(b, a_share)


def test_low_order_shares_are_refused():
    with pytest.raises(ValueError, match="low-order"):
        shared_secret(os.urandom(32), bytes(32))
    with pytest.raises(ValueError, match="low-order"):
        shared_secret(os.urandom(32), (1).to_bytes(32, "little"))


def test_every_public_input_and_the_secret_change_the_keys():
    key, na, nc, a, c, z = b"r" * 32, b"1" * 16, b"2" * 16, b"3" * 32, b"4" * 32, b"5" * 32
    base = session_master(key, na, nc, a, c, z)
    assert base != session_master(key, na, nc, a, c, b"6" * 32)
    assert base != session_master(b"s" * 32, na, nc, a, c, z)
    assert base != session_master(key, nc, na, a, c, z)
    secret = rejoin_secret(base)
    assert rejoin_proof(secret, na, nc, a) != rejoin_proof(secret, na, b"7" * 16, a)


def test_weak_run_keys_are_refused():
    with pytest.raises(ValueError, match="at least 16"):
        check_run_key(b"short")
    with pytest.raises(ValueError, match="all zero"):
        check_run_key(bytes(32))
