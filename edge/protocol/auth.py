"""Keys and tags: HMAC-SHA256 under the pre-shared run key, truncated to TAG_BYTES,
and an X25519 key agreement that makes each session's keys its own.

Key schedule (all HMAC-SHA256; `run_key` is the pre-shared key, >= 16 bytes;
D = "up" (agent -> coordinator) or "down" (coordinator -> agent)):

    agent key:      K_k = HMAC(S_k, "fedzo/v3/agent-key" k)   (k as u32; S_k
                          is agent k's own secret, agentkeys.py). With a key
                          per agent, K_k stands for run_key in all below.

    handshake key:  H_D = HMAC(run_key, "fedzo/v2/handshake/" D)
    shared secret:  Z   = X25519(a, C) = X25519(c, A)   (a, c: the ephemeral
                          private keys of agent and coordinator; A, C: their
                          key shares, sent in Join and Welcome)
    session master: M   = HMAC(run_key, "fedzo/v2/master" nonce_a nonce_c A C Z)
    session key:    S_D = HMAC(M, "fedzo/v2/session/" D)
    rejoin secret:  R   = HMAC(M, "fedzo/v2/rejoin")
    ARQ key:        L_D = HMAC(M, "fedzo/v2/arq/" D)   (serial packets, arq.py)

Tags:

    Hello, Challenge (and Error/Bye before the Challenge):
                     tag = HMAC(H_D, nonce_a || header || body)[:16]
    Join, Welcome (and Error/Bye between Challenge and Welcome):
                     tag = HMAC(H_D, nonce_a || nonce_c || header || body)[:16]
    session frame:   tag = HMAC(S_D, header || body)[:16]

A rejoin proof (in Join) shows that the joiner holds the rejoin secret R of
the last session welcomed under its agent id:

    proof = HMAC(R, "fedzo/v2/rejoin-proof" nonce_a nonce_c A)[:16]

Why:
- nonce_c comes from the coordinator (Challenge), fresh for every Hello, so
  a Join is bound to one coordinator instance and one handshake: a Join
  recorded earlier, in this run or before a restart, fails its tag.
- Z never travels: someone who holds the run key but only listens (another
  agent, say) cannot compute Z, so cannot compute S_D or R of a session that
  is not their own. (The run key still authenticates the handshake, so a
  key holder who sits in the middle of a link can run two handshakes; only
  per-agent keys stop that, see docs/SECURITY.md.)
- Separate keys per direction stop a frame from being reflected back to its
  sender.

X25519 is RFC 7748's function on Curve25519, written here from the RFC's
description with Python integers (the standard library has no key agreement).
It is not constant-time; the secrets it protects live for one session.
"""
from __future__ import annotations

import hashlib
import hmac
import os

from .constants import KEY_SHARE_BYTES, MIN_KEY_BYTES, NONCE_BYTES, PROTOCOL_VERSION, TAG_BYTES

UP = "up"
DOWN = "down"
DIRECTIONS = (UP, DOWN)
_LABEL = f"fedzo/v{PROTOCOL_VERSION}/".encode()


def _derive(key: bytes, label: bytes) -> bytes:
    return hmac.new(key, label, hashlib.sha256).digest()


def check_run_key(run_key) -> bytes:
    """Return run_key as bytes; ValueError if it is too short or all zero."""
    if not isinstance(run_key, (bytes, bytearray, memoryview)):
        raise TypeError(f"the run key must be bytes, got {type(run_key).__name__}")
    run_key = bytes(run_key)
    if len(run_key) < MIN_KEY_BYTES:
        raise ValueError(f"the run key must be at least {MIN_KEY_BYTES} bytes, got {len(run_key)}")
    if not any(run_key):
        raise ValueError("the run key is all zero bytes")
    return run_key


class Tagger:
    """Computes and checks tags under one derived key (one direction, one phase)."""

    __slots__ = ("_base", "_prefix")

    def __init__(self, key: bytes, prefix: bytes = b""):
        # Keying HMAC once and copying per frame saves two SHA-256 blocks a frame.
        self._base = hmac.new(key, prefix, hashlib.sha256)
        self._prefix = prefix

    def tag(self, header: bytes, body) -> bytes:
        """The TAG_BYTES-byte tag of header || body."""
        h = self._base.copy()
        h.update(header)
        h.update(body)
        return h.digest()[:TAG_BYTES]

    def verify(self, header: bytes, body, tag: bytes) -> bool:
        """Constant-time check of a received tag."""
        return hmac.compare_digest(self.tag(header, body), tag)


def _check_direction(direction):
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")


def handshake_tagger(run_key: bytes, direction: str, binding: bytes) -> Tagger:
    """Tagger for handshake frames; binding is nonce_a, or nonce_a || nonce_c after the Challenge."""
    _check_direction(direction)
    if len(binding) not in (NONCE_BYTES, 2 * NONCE_BYTES):
        raise ValueError(f"a handshake binding is one or two {NONCE_BYTES}-byte nonces")
    return Tagger(_derive(run_key, _LABEL + b"handshake/" + direction.encode()), binding)


def session_master(run_key: bytes, agent_nonce: bytes, challenge: bytes, agent_share: bytes,
                   coordinator_share: bytes, shared: bytes) -> bytes:
    """M: the secret all of one session's keys come from (see the module docstring)."""
    return _derive(run_key, _LABEL + b"master" + agent_nonce + challenge + agent_share
                   + coordinator_share + shared)


def agent_root(secret: bytes, agent_id: int) -> bytes:
    """K_k: what agent k's sessions use in the place of the run key (its secret and its id)."""
    check_run_key(secret)
    return _derive(secret, _LABEL + b"agent-key" + agent_id.to_bytes(4, "big"))


def session_tagger(master: bytes, direction: str) -> Tagger:
    """Tagger for the frames after the handshake, under S_D."""
    _check_direction(direction)
    return Tagger(_derive(master, _LABEL + b"session/" + direction.encode()))


def arq_key(master: bytes, direction: str) -> bytes:
    """L_D: the key of the serial ARQ packets a session's side sends in `direction`.

    Its own label, so a packet tag never doubles as a frame tag (or the reverse).
    """
    _check_direction(direction)
    return _derive(master, _LABEL + b"arq/" + direction.encode())


def rejoin_secret(master: bytes) -> bytes:
    """R: what a later Join of the same agent shows it holds (see rejoin_proof)."""
    return _derive(master, _LABEL + b"rejoin")


def rejoin_proof(secret: bytes, agent_nonce: bytes, challenge: bytes, agent_share: bytes) -> bytes:
    """The proof a Join carries that its sender holds `secret` (bound to this handshake)."""
    return _derive(secret, _LABEL + b"rejoin-proof" + agent_nonce + challenge + agent_share)[:TAG_BYTES]


# --- X25519 (RFC 7748, section 5) --------------------------------------------

_P = 2**255 - 19
_A24 = 121665
BASE_POINT = (9).to_bytes(KEY_SHARE_BYTES, "little")


def _clamp(scalar: bytes) -> int:
    k = bytearray(scalar)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    return int.from_bytes(k, "little")


def x25519(scalar: bytes, point: bytes) -> bytes:
    """X25519(scalar, u): 32 bytes in, 32 bytes out (little-endian u-coordinates)."""
    if len(scalar) != KEY_SHARE_BYTES or len(point) != KEY_SHARE_BYTES:
        raise ValueError(f"X25519 takes {KEY_SHARE_BYTES}-byte scalars and points")
    k = _clamp(scalar)
    u = int.from_bytes(point, "little") & ((1 << 255) - 1)
    x1, x2, z2, x3, z3 = u % _P, 1, 0, u % _P, 1
    swap = 0
    for t in range(254, -1, -1):          # the Montgomery ladder, one bit of k a step
        bit = (k >> t) & 1
        if swap ^ bit:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = (x2 + z2) % _P, (x2 - z2) % _P
        aa, bb = a * a % _P, b * b % _P
        e = (aa - bb) % _P
        c, d = (x3 + z3) % _P, (x3 - z3) % _P
        da, cb = d * a % _P, c * b % _P
        x3 = (da + cb) ** 2 % _P
        z3 = x1 * (da - cb) ** 2 % _P
        x2 = aa * bb % _P
        z2 = e * (aa + _A24 * e) % _P
    if swap:
        x2, z2 = x3, z3
    # The inverse by Python's extended Euclid (pow(z, -1, p)) is the same number as RFC 7748's
    # z^(p-2) at a small fraction of the cost; z = 0 (a low-order point) maps to 0 as there.
    inverse = pow(z2, -1, _P) if z2 % _P else 0
    return (x2 * inverse % _P).to_bytes(KEY_SHARE_BYTES, "little")


def new_key_pair() -> tuple[bytes, bytes]:
    """A fresh ephemeral (private key, key share) pair."""
    private = os.urandom(KEY_SHARE_BYTES)
    return private, x25519(private, BASE_POINT)


def shared_secret(private: bytes, peer_share: bytes) -> bytes:
    """Z from our private key and the peer's share; ValueError for a low-order share (Z = 0)."""
    z = x25519(private, peer_share)
    if not any(z):
        raise ValueError("the peer's key share is a low-order point")
    return z
