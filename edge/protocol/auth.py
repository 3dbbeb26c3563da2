"""Keys and tags: HMAC-SHA256 under the pre-shared run key, truncated to TAG_BYTES.

Key schedule (all HMAC-SHA256, `run_key` is the pre-shared key, >= 16 bytes):

    handshake key, direction D:  H_D = HMAC(run_key, "fedzo/v1/handshake/" D)
    session key,   direction D:  S_D = HMAC(run_key, "fedzo/v1/session/" D "/"
                                              agent_nonce session_nonce)

with D = "up" (agent -> coordinator) or "down" (coordinator -> agent).

Tags:

    handshake frame: tag = HMAC(H_D, agent_nonce || header || body)[:16]
    session frame:   tag = HMAC(S_D, header || body)[:16]

Why: the agent's nonce (sent in Join) and the coordinator's session nonce
(sent in Welcome) make each session's keys unique, so a frame recorded in an
earlier session (or on another agent's link) never verifies in this one, even
with the same sequence number. Separate keys per direction stop a frame from
being reflected back to its sender. Handshake frames are bound to the agent's
nonce, so an old Welcome cannot answer a new Join.
"""
from __future__ import annotations

import hashlib
import hmac

from .constants import MIN_KEY_BYTES, NONCE_BYTES, PROTOCOL_VERSION, TAG_BYTES

UP = "up"
DOWN = "down"
DIRECTIONS = (UP, DOWN)


def _derive(run_key: bytes, label: bytes) -> bytes:
    return hmac.new(run_key, label, hashlib.sha256).digest()


def check_run_key(run_key) -> bytes:
    """Return run_key as bytes; ValueError if it is not bytes or too short."""
    if not isinstance(run_key, (bytes, bytearray, memoryview)):
        raise TypeError(f"the run key must be bytes, got {type(run_key).__name__}")
    run_key = bytes(run_key)
    if len(run_key) < MIN_KEY_BYTES:
        raise ValueError(f"the run key must be at least {MIN_KEY_BYTES} bytes, got {len(run_key)}")
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


def _check_args(direction, *nonces):
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
    if any(len(n) != NONCE_BYTES for n in nonces):
        raise ValueError(f"nonces must be {NONCE_BYTES} bytes")


def handshake_tagger(run_key: bytes, direction: str, agent_nonce: bytes) -> Tagger:
    """Tagger for handshake frames (Join, Welcome, and Error/Bye before Welcome)."""
    _check_args(direction, agent_nonce)
    label = f"fedzo/v{PROTOCOL_VERSION}/handshake/{direction}".encode()
    return Tagger(_derive(run_key, label), agent_nonce)


def session_tagger(run_key: bytes, direction: str, agent_nonce: bytes,
                   session_nonce: bytes) -> Tagger:
    """Tagger for the frames after the handshake."""
    _check_args(direction, agent_nonce, session_nonce)
    label = (f"fedzo/v{PROTOCOL_VERSION}/session/{direction}/".encode()
             + agent_nonce + session_nonce)
    return Tagger(_derive(run_key, label))
