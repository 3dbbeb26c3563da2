"""The message set: one frozen dataclass per message, one table of types.

Each class has `encode_body() -> bytes` and `decode_body(body) -> message`.
A body is what sits between the header and the tag (see session.py); its
length is implied by the frame, so the last field of a variable-size body
runs to the end. Scalar fields are big-endian (network order, like the
header); bulk arrays (Sync, ModelUpload, ModelDownload) are little-endian,
the native order of the boards, so they can be viewed without copying.

Encodings are canonical: a body decodes to at most one message and
`decode_body(b).encode_body() == b` for every body that decodes (padding bits
must be zero, sentinels must come with zeroed companions, no trailing bytes).

Fields are validated when a message is built, including by the decoder, so an
out-of-range value raises `InvalidField` (a `MalformedFrame` and a
`ValueError`) whether it came from local code or from the wire.
"""
from __future__ import annotations

import json
import operator
import os
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

from fedzo.edge.learning.store_format import FORMAT_BY_CODE, STORE_FORMATS

from .constants import (
    ASSIGN_AGENT_ID,
    HASH_BYTES,
    KEY_SHARE_BYTES,
    MAX_AGENTS,
    MAX_CONFIG_BYTES,
    MAX_FRAME_BYTES,
    MAX_ROUND,
    MAX_TERMS_BYTES,
    MAX_TEXT_BYTES,
    MIN_PEER_MAX_FRAME,
    NO_ROUND,
    NONCE_BYTES,
    PROOF_BYTES,
)
from .errors import InvalidField, MalformedFrame, TruncatedFrame

ZERO_HASH = bytes(HASH_BYTES)
ZERO_SHARE = bytes(KEY_SHARE_BYTES)   # "filled in by the session when it seals"
NO_PROOF = bytes(PROOF_BYTES)         # a Join without a rejoin proof


def new_nonce() -> bytes:
    """A fresh random nonce (NONCE_BYTES bytes from the OS)."""
    return os.urandom(NONCE_BYTES)


class ErrorCode(IntEnum):
    """Codes carried by Error. Receivers accept any u16 (unknown = generic)."""

    GENERIC = 0
    BAD_VERSION = 1      # the peer speaks another protocol version
    AUTH_FAILED = 2      # tag or handshake did not verify
    BAD_MESSAGE = 3      # a frame was rejected as malformed or unexpected
    RUN_FULL = 4         # no free block for a joining agent
    UNKNOWN_AGENT = 5    # a rejoin for an agent id the run does not have
    STALE_ROUND = 6      # a vote or upload for a round that is not current
    DIVERGED = 7         # the theta hashes differ: a Sync follows
    INCOMPATIBLE = 8     # capabilities do not fit the run (dtype, memory)
    INTERNAL = 9         # the sender failed; the text says how
    ID_IN_USE = 10       # the agent id is held by a live session: try again later
    REVOKED = 11         # this agent's own key is revoked (a Refusal's code; docs/SECURITY.md)


class ByeReason(IntEnum):
    """Reasons carried by Bye. Receivers accept any u16."""

    DONE = 0             # the run finished
    SHUTDOWN = 1         # the sender is stopping (signal, user)
    TIMEOUT = 2          # the peer was silent for too long
    REPLACED = 3         # a newer session for the same agent took over
    PROTOCOL = 4         # too many bad frames from the peer
    EXCLUDED = 5         # the coordinator dropped the agent from the run


# --- field validation -------------------------------------------------------

def _set(obj, name, value):
    object.__setattr__(obj, name, value)  # frozen dataclasses: normalise once


def _check_int(obj, name, lo, hi):
    try:
        value = operator.index(getattr(obj, name))
    except TypeError:
        raise InvalidField(f"{type(obj).__name__}.{name} must be an integer, "
                           f"got {getattr(obj, name)!r}") from None
    if not lo <= value <= hi:
        raise InvalidField(f"{type(obj).__name__}.{name}={value} is outside [{lo}, {hi}]")
    _set(obj, name, value)


def _check_bytes(obj, name, size=None):
    value = getattr(obj, name)
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise InvalidField(f"{type(obj).__name__}.{name} must be bytes, got {type(value).__name__}")
    value = bytes(value)
    if size is not None and len(value) != size:
        raise InvalidField(f"{type(obj).__name__}.{name} must be {size} bytes, got {len(value)}")
    _set(obj, name, value)


def _check_text(obj, name, limit):
    value = getattr(obj, name)
    if not isinstance(value, str):
        raise InvalidField(f"{type(obj).__name__}.{name} must be str, got {type(value).__name__}")
    try:
        n = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates cannot go on the wire
        raise InvalidField(f"{type(obj).__name__}.{name} is not encodable as UTF-8") from None
    if n > limit:
        raise InvalidField(f"{type(obj).__name__}.{name} is {n} bytes of UTF-8, limit {limit}")


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedFrame(f"{what} is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def _exact(body: bytes, size: int, name: str) -> None:
    if len(body) < size:
        raise TruncatedFrame(f"{name} body is {len(body)} bytes, needs {size}")
    if len(body) > size:
        raise MalformedFrame(f"{name} body is {len(body)} bytes, expected exactly {size}")


def _at_least(body: bytes, size: int, name: str) -> None:
    if len(body) < size:
        raise TruncatedFrame(f"{name} body is {len(body)} bytes, needs at least {size}")


def _tail_text(body: bytes, offset: int, limit: int, what: str) -> str:
    """The UTF-8 text from `offset` to the end of a body, at most `limit` bytes."""
    if len(body) - offset > limit:
        raise MalformedFrame(f"{what} is {len(body) - offset} bytes, limit {limit}")
    return _utf8(body[offset:], what)


def _reject_constant(token):
    raise ValueError(f"JSON constant {token} is not allowed")


def parse_config(text: str) -> dict:
    """Parse a run-config JSON text; it must be an object with finite numbers."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # deep nesting -> RecursionError
        raise InvalidField(f"run config is not valid JSON: {str(exc)[:80]}") from None
    if not isinstance(value, dict):
        raise InvalidField(f"run config must be a JSON object, got {type(value).__name__}")
    return value


def config_json(config: dict) -> str:
    """The canonical JSON text of a run config, as Welcome carries it."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False)


# --- 2-bit vote packing -----------------------------------------------------

# Vote j sits in bits 2*(j % 4) .. 2*(j % 4)+1 of byte j // 4 (LSB first).
_VOTE_CODE = {0: 0b00, 1: 0b01, -1: 0b10}
_CODE_VOTE = {0b00: 0, 0b01: 1, 0b10: -1}


def packed_votes_size(n: int) -> int:
    """Bytes taken by n packed votes."""
    return (n + 3) // 4


def pack_votes(votes) -> bytes:
    """Pack votes in {-1, 0, +1} into 2 bits each (code 0b11 is invalid)."""
    out = bytearray(packed_votes_size(len(votes)))
    for j, v in enumerate(votes):
        out[j >> 2] |= _VOTE_CODE[v] << ((j & 3) * 2)
    return bytes(out)


def unpack_votes(data: bytes, n: int) -> tuple[int, ...]:
    """Inverse of pack_votes; rejects code 0b11 and non-zero padding bits."""
    if len(data) != packed_votes_size(n):
        raise MalformedFrame(f"{n} packed votes need {packed_votes_size(n)} bytes, got {len(data)}")
    votes = []
    for j in range(n):
        code = (data[j >> 2] >> ((j & 3) * 2)) & 3
        if code == 0b11:
            raise MalformedFrame(f"vote {j} has the invalid code 0b11")
        votes.append(_CODE_VOTE[code])
    if n & 3 and data[-1] >> ((n & 3) * 2):
        raise MalformedFrame("non-zero padding bits after the last vote")
    return tuple(votes)


# --- messages ---------------------------------------------------------------

class Message:
    """Base of all messages. Subclasses set TYPE, SENDER and the codecs."""

    TYPE: ClassVar[int]
    NAME: ClassVar[str]
    SENDER: ClassVar[str]          # "agent", "coordinator" or "either"

    def encode_body(self) -> bytes:  # pragma: no cover - every subclass overrides
        """The body bytes of this message."""
        raise NotImplementedError

    @classmethod
    def decode_body(cls, body: bytes):  # pragma: no cover - every subclass overrides
        """Parse a body; raises a ProtocolError subclass on bad input."""
        raise NotImplementedError

    @property
    def round_number(self) -> int | None:
        """The round this message belongs to, if it carries one."""
        return getattr(self, "round", None)


_BACKENDS = ("numpy", "c")
_STORE_BITS = tuple(8 * f.itemsize for f in STORE_FORMATS.values())   # 16, 32


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a joining agent can do.

    backend: kernel backend, "c" or "numpy". store_bits: integer width of its
    theta store, 16 or 32. memory_budget: bytes it may use for learning state
    (0 = not stated). max_frame: largest message frame it accepts; the
    coordinator sizes Sync/ModelDownload chunks to min(this, MAX_FRAME_BYTES).
    """

    backend: str = "numpy"
    store_bits: int = 16
    memory_budget: int = 0
    max_frame: int = MAX_FRAME_BYTES

    def __post_init__(self):
        if self.backend not in _BACKENDS:
            raise InvalidField(f"Capabilities.backend must be one of {_BACKENDS}, got {self.backend!r}")
        if self.store_bits not in _STORE_BITS:
            raise InvalidField(f"Capabilities.store_bits must be 16 or 32, got {self.store_bits!r}")
        _check_int(self, "store_bits", 16, 32)
        _check_int(self, "memory_budget", 0, 2**64 - 1)
        _check_int(self, "max_frame", MIN_PEER_MAX_FRAME, MAX_FRAME_BYTES)


@dataclass(frozen=True, slots=True)
class Hello(Message):
    """Agent -> coordinator: the first frame of a session; asks for a Challenge.

    nonce (nonce_a): fresh per session; binds every handshake frame (auth.py).
    agent_id: None under the run key (the body is the nonce alone, as it has
    always been); the agent's id when it holds a key of its own
    (agentkeys.py), so that the coordinator knows which key the frame's tag
    is under. Filled in by the agent's Session when it seals the Hello.
    """

    TYPE: ClassVar[int] = 0x0C
    NAME: ClassVar[str] = "hello"
    SENDER: ClassVar[str] = "agent"
    _ID: ClassVar[struct.Struct] = struct.Struct(">I")

    nonce: bytes = field(default_factory=new_nonce)
    agent_id: int | None = None

    def __post_init__(self):
        _check_bytes(self, "nonce", NONCE_BYTES)
        if self.agent_id is not None:
            _check_int(self, "agent_id", 0, ASSIGN_AGENT_ID - 1)   # a key is for one real id

    def encode_body(self) -> bytes:
        if self.agent_id is None:
            return self.nonce
        return self.nonce + self._ID.pack(self.agent_id)

    @classmethod
    def decode_body(cls, body: bytes):
        if len(body) == NONCE_BYTES:
            return cls(body)
        _exact(body, NONCE_BYTES + cls._ID.size, cls.NAME)
        return cls(body[:NONCE_BYTES], cls._ID.unpack_from(body, NONCE_BYTES)[0])


@dataclass(frozen=True, slots=True)
class Challenge(Message):
    """Coordinator -> agent: the answer to Hello. nonce (nonce_c) is fresh for
    every Hello; the Join must be tagged over it, so no Join recorded before
    (by this coordinator or before a restart) is accepted.

    d and terms_json are the run's terms, what an agent needs to decide
    whether it can take part before it asks for a slot: the parameter count
    and a small JSON object {"task", "algo", "agents", "dtype"} ("" = not
    stated; at most MAX_TERMS_BYTES, so a join costs a few dozen bytes more,
    not a second copy of the Welcome's config). An agent with a memory
    budget checks it against them and declines before it joins
    (edge/agent/budget.py), so it never takes a slot it cannot keep. Only a
    Hello tagged under the run key earns a Challenge; theta is never in it.
    """

    TYPE: ClassVar[int] = 0x0D
    NAME: ClassVar[str] = "challenge"
    SENDER: ClassVar[str] = "coordinator"
    _S: ClassVar[struct.Struct] = struct.Struct(f">{NONCE_BYTES}sI")

    nonce: bytes = field(default_factory=new_nonce)
    d: int = 0
    terms_json: str = ""

    def __post_init__(self):
        _check_bytes(self, "nonce", NONCE_BYTES)
        _check_int(self, "d", 0, 2**32 - 1)
        _check_text(self, "terms_json", MAX_TERMS_BYTES)
        if self.terms_json:
            parse_config(self.terms_json)

    @property
    def terms(self) -> dict | None:
        """The run's terms as a dict, or None if the coordinator did not state them."""
        return parse_config(self.terms_json) if self.terms_json else None

    def encode_body(self) -> bytes:
        return self._S.pack(self.nonce, self.d) + self.terms_json.encode("utf-8")

    @classmethod
    def decode_body(cls, body: bytes) -> Challenge:
        _at_least(body, cls._S.size, "challenge")
        terms = _tail_text(body, cls._S.size, MAX_TERMS_BYTES, "challenge terms")
        return cls(*cls._S.unpack_from(body), terms)


@dataclass(frozen=True, slots=True)
class Join(Message):
    """Agent -> coordinator: the answer to the Challenge, which asks for a slot.

    agent_id: ASSIGN_AGENT_ID asks the coordinator to assign one; a rejoining
    agent gives its id and the round and theta hash it holds (both None on a
    first join). key_share (A) and rejoin_proof are filled in by the agent's
    Session when it seals the Join (see auth.py); rejoin_proof is zero when
    the agent holds no earlier session. rejoin_proven is not on the wire: the
    coordinator's Session sets it when the proof verified under the rejoin
    secret of the last session welcomed under agent_id.
    """

    TYPE: ClassVar[int] = 0x01
    NAME: ClassVar[str] = "join"
    SENDER: ClassVar[str] = "agent"
    _S: ClassVar[struct.Struct] = struct.Struct(">IBBIQI8s32s16s")

    agent_id: int = ASSIGN_AGENT_ID
    capabilities: Capabilities = field(default_factory=Capabilities)
    round: int | None = None
    theta_hash: bytes | None = None
    key_share: bytes = ZERO_SHARE
    rejoin_proof: bytes = NO_PROOF
    rejoin_proven: bool = field(default=False, compare=False)

    def __post_init__(self):
        _check_int(self, "agent_id", 0, ASSIGN_AGENT_ID)
        if not isinstance(self.capabilities, Capabilities):
            raise InvalidField("Join.capabilities must be a Capabilities")
        if (self.round is None) != (self.theta_hash is None):
            raise InvalidField("Join.round and Join.theta_hash are both given or both None")
        if self.round is not None:
            _check_int(self, "round", 0, MAX_ROUND)
            _check_bytes(self, "theta_hash", HASH_BYTES)
        _check_bytes(self, "key_share", KEY_SHARE_BYTES)
        _check_bytes(self, "rejoin_proof", PROOF_BYTES)
        _set(self, "rejoin_proven", bool(self.rejoin_proven))

    def encode_body(self) -> bytes:
        c = self.capabilities
        rejoin = self.round is not None
        return self._S.pack(self.agent_id, _BACKENDS.index(c.backend),
                            c.store_bits, c.max_frame, c.memory_budget,
                            self.round if rejoin else NO_ROUND,
                            self.theta_hash if rejoin else ZERO_HASH,
                            self.key_share, self.rejoin_proof)

    @classmethod
    def decode_body(cls, body: bytes) -> Join:
        _exact(body, cls._S.size, "join")
        agent_id, backend, bits, max_frame, budget, rnd, h, share, proof = cls._S.unpack(body)
        if backend >= len(_BACKENDS):
            raise MalformedFrame(f"join: unknown kernel backend code {backend}")
        if rnd == NO_ROUND:
            if h != ZERO_HASH:
                raise MalformedFrame("join: theta hash given without a round")
            rnd, h = None, None
        caps = Capabilities(_BACKENDS[backend], bits, budget, max_frame)
        return cls(agent_id, caps, rnd, h, share, proof)


@dataclass(frozen=True, slots=True)
class Welcome(Message):
    """Coordinator -> agent: the assignment that completes the handshake.

    block is k in [0, n_agents); d the parameter count; seed the run's 64-bit
    seed; round the current round; theta_hash the hash of the coordinator's
    current theta; config_json the resolved run config (a JSON object, at most
    MAX_CONFIG_BYTES of UTF-8); key_share (C) the coordinator's X25519 share,
    filled in by its Session when it seals the Welcome (see auth.py).
    """

    TYPE: ClassVar[int] = 0x02
    NAME: ClassVar[str] = "welcome"
    SENDER: ClassVar[str] = "coordinator"
    _S: ClassVar[struct.Struct] = struct.Struct(">IHHIQI8s32s")

    agent_id: int
    block: int
    n_agents: int
    d: int
    seed: int
    round: int
    theta_hash: bytes
    config_json: str = "{}"
    key_share: bytes = ZERO_SHARE

    def __post_init__(self):
        _check_int(self, "agent_id", 0, ASSIGN_AGENT_ID - 1)
        _check_int(self, "n_agents", 1, MAX_AGENTS)
        _check_int(self, "block", 0, self.n_agents - 1)
        _check_int(self, "d", 0, 2**32 - 1)
        _check_int(self, "seed", 0, 2**64 - 1)
        _check_int(self, "round", 0, MAX_ROUND)
        _check_bytes(self, "theta_hash", HASH_BYTES)
        _check_bytes(self, "key_share", KEY_SHARE_BYTES)
        _check_text(self, "config_json", MAX_CONFIG_BYTES)
        parse_config(self.config_json)

    @property
    def config(self) -> dict:
        """The run config as a dict."""
        return parse_config(self.config_json)

    def encode_body(self) -> bytes:
        return self._S.pack(self.agent_id, self.block, self.n_agents, self.d, self.seed,
                            self.round, self.theta_hash, self.key_share) + self.config_json.encode("utf-8")

    @classmethod
    def decode_body(cls, body: bytes) -> Welcome:
        _at_least(body, cls._S.size, "welcome")
        text = _tail_text(body, cls._S.size, MAX_CONFIG_BYTES, "welcome config")
        fields = cls._S.unpack_from(body)
        agent_id, block, n_agents, d, seed, rnd, h, share = fields
        return cls(agent_id, block, n_agents, d, seed, rnd, h, text, share)


@dataclass(frozen=True, slots=True)
class RoundStart(Message):
    """Coordinator -> agents: round `round` begins (no vector is sent)."""

    TYPE: ClassVar[int] = 0x03
    NAME: ClassVar[str] = "round_start"
    SENDER: ClassVar[str] = "coordinator"
    _S: ClassVar[struct.Struct] = struct.Struct(">I")

    round: int

    def __post_init__(self):
        _check_int(self, "round", 0, MAX_ROUND)

    def encode_body(self) -> bytes:
        return self._S.pack(self.round)

    @classmethod
    def decode_body(cls, body: bytes) -> RoundStart:
        _exact(body, cls._S.size, "round_start")
        return cls(*cls._S.unpack(body))


@dataclass(frozen=True, slots=True)
class Vote(Message):
    """Agent -> coordinator: its vote for `round` and the hash of its theta_t."""

    TYPE: ClassVar[int] = 0x04
    NAME: ClassVar[str] = "vote"
    SENDER: ClassVar[str] = "agent"
    _S: ClassVar[struct.Struct] = struct.Struct(">Ib8s")

    round: int
    vote: int
    theta_hash: bytes

    def __post_init__(self):
        _check_int(self, "round", 0, MAX_ROUND)
        _check_int(self, "vote", -1, 1)
        _check_bytes(self, "theta_hash", HASH_BYTES)

    def encode_body(self) -> bytes:
        return self._S.pack(self.round, self.vote, self.theta_hash)

    @classmethod
    def decode_body(cls, body: bytes) -> Vote:
        _exact(body, cls._S.size, "vote")
        return cls(*cls._S.unpack(body))


@dataclass(frozen=True, slots=True)
class RoundResult(Message):
    """Coordinator -> agents: the K votes of `round` (missing = 0), 2 bits each,
    and the hash of the coordinator's theta after applying them.

    One object is sent to every agent of a round, so its body is encoded once
    (on the first encode_body) and kept: the coordinator's cost per agent is
    the sealing alone, not K votes packed again for each of n links."""

    TYPE: ClassVar[int] = 0x05
    NAME: ClassVar[str] = "round_result"
    SENDER: ClassVar[str] = "coordinator"
    _S: ClassVar[struct.Struct] = struct.Struct(">IH8s")

    round: int
    votes: tuple[int, ...]
    theta_hash: bytes
    _body: bytes = field(default=None, compare=False, repr=False)   # the encoded body, once made

    def __post_init__(self):
        _check_int(self, "round", 0, MAX_ROUND)
        try:
            votes = tuple(operator.index(v) for v in self.votes)
        except TypeError:
            raise InvalidField(f"{type(self).__name__}.votes must be integers") from None
        if not 1 <= len(votes) <= MAX_AGENTS:
            raise InvalidField(f"{type(self).__name__} carries 1..{MAX_AGENTS} votes, got {len(votes)}")
        if any(v not in _VOTE_CODE for v in votes):
            raise InvalidField(f"{type(self).__name__}.votes must all be -1, 0 or +1")
        _set(self, "votes", votes)
        _check_bytes(self, "theta_hash", HASH_BYTES)

    def encode_body(self) -> bytes:
        if self._body is None:
            _set(self, "_body", self._S.pack(self.round, len(self.votes), self.theta_hash) + pack_votes(self.votes))
        return self._body

    @classmethod
    def decode_body(cls, body: bytes) -> RoundResult:
        _at_least(body, cls._S.size, cls.NAME)
        rnd, n, h = cls._S.unpack_from(body)
        packed = body[cls._S.size:]
        if len(packed) < packed_votes_size(n):
            raise TruncatedFrame(f"{cls.NAME}: {n} votes need {packed_votes_size(n)} bytes, "
                                 f"got {len(packed)}")
        return cls(rnd, unpack_votes(packed, n), h)


@dataclass(frozen=True, slots=True)
class RoundResultNext(RoundResult):
    """Coordinator -> agent: the result of round `round` (as RoundResult), and round
    `round + 1` starts now for this agent (protocol 4: no separate RoundStart, so a
    steady round is one frame down). Its body is RoundResult's. The round it
    belongs to, for the byte counts, is the result's."""

    TYPE: ClassVar[int] = 0x0F
    NAME: ClassVar[str] = "round_result_next"

    @property
    def next_round(self) -> int:
        """The round that starts with this message."""
        return self.round + 1

    def __post_init__(self):
        RoundResult.__post_init__(self)
        if self.round >= MAX_ROUND:
            raise InvalidField(f"{self.NAME}: round {self.round} has no next round")


def _check_chunk(obj, itemsize):
    _check_int(obj, "total", 0, 2**32 - 1)
    _check_int(obj, "offset", 0, 2**32 - 1)
    _check_bytes(obj, "data")
    name = type(obj).__name__
    if len(obj.data) % itemsize:
        raise InvalidField(f"{name}.data is {len(obj.data)} bytes, not a multiple of {itemsize}")
    n = len(obj.data) // itemsize
    if obj.offset + n > obj.total:
        raise InvalidField(f"{name}: offset {obj.offset} + {n} elements exceeds total {obj.total}")
    if n == 0 and obj.total != 0:
        raise InvalidField(f"{name}: empty chunk of a non-empty vector")


@dataclass(frozen=True, slots=True)
class Sync(Message):
    """Coordinator -> agent: one chunk of the full fixed-point theta.

    total and offset count elements; data is the raw little-endian chunk of
    dtype ("int16" or "int32") with frac_bits fractional bits; theta_hash is
    the hash of the whole vector (every chunk carries it).
    """

    TYPE: ClassVar[int] = 0x06
    NAME: ClassVar[str] = "sync"
    SENDER: ClassVar[str] = "coordinator"
    _S: ClassVar[struct.Struct] = struct.Struct(">IIIBB8s")

    round: int
    total: int
    offset: int
    dtype: str
    frac_bits: int
    theta_hash: bytes
    data: bytes

    def __post_init__(self):
        _check_int(self, "round", 0, MAX_ROUND)
        if self.dtype not in STORE_FORMATS:
            raise InvalidField(f"Sync.dtype must be int16 or int32, got {self.dtype!r}")
        itemsize = STORE_FORMATS[self.dtype].itemsize
        _check_int(self, "frac_bits", 0, 8 * itemsize - 1)
        _check_bytes(self, "theta_hash", HASH_BYTES)
        _check_chunk(self, itemsize)

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        return STORE_FORMATS[self.dtype].itemsize

    def encode_body(self) -> bytes:
        return self._S.pack(self.round, self.total, self.offset, STORE_FORMATS[self.dtype].code,
                            self.frac_bits, self.theta_hash) + self.data

    @classmethod
    def decode_body(cls, body: bytes) -> Sync:
        _at_least(body, cls._S.size, "sync")
        rnd, total, offset, code, frac, h = cls._S.unpack_from(body)
        if code not in FORMAT_BY_CODE:
            raise MalformedFrame(f"sync: unknown dtype code {code}")
        return cls(rnd, total, offset, FORMAT_BY_CODE[code].name, frac, h, body[cls._S.size:])


@dataclass(frozen=True, slots=True)
class _ModelChunk(Message):
    """Shared fields and codec of ModelUpload/ModelDownload: a float32 little-endian chunk."""

    _S: ClassVar[struct.Struct] = struct.Struct(">III")
    itemsize: ClassVar[int] = 4

    round: int
    total: int
    offset: int
    data: bytes

    def __post_init__(self):
        _check_int(self, "round", 0, MAX_ROUND)
        _check_chunk(self, self.itemsize)

    def encode_body(self) -> bytes:
        return self._S.pack(self.round, self.total, self.offset) + self.data

    @classmethod
    def decode_body(cls, body: bytes):
        _at_least(body, cls._S.size, cls.NAME)
        return cls(*cls._S.unpack_from(body), body[cls._S.size:])


@dataclass(frozen=True, slots=True)
class ModelUpload(_ModelChunk):
    """Agent -> coordinator (FedAvg): one float32 chunk of its local model."""

    TYPE: ClassVar[int] = 0x07
    NAME: ClassVar[str] = "model_upload"
    SENDER: ClassVar[str] = "agent"


@dataclass(frozen=True, slots=True)
class ModelDownload(_ModelChunk):
    """Coordinator -> agent (FedAvg): one float32 chunk of the averaged model."""

    TYPE: ClassVar[int] = 0x08
    NAME: ClassVar[str] = "model_download"
    SENDER: ClassVar[str] = "coordinator"


class _Coded(Message):
    """Shared codec of Error/Bye: a u16 code and a short UTF-8 text."""

    _S: ClassVar[struct.Struct] = struct.Struct(">H")

    def __post_init__(self):
        _check_int(self, "code", 0, 0xFFFF)
        _check_text(self, "text", MAX_TEXT_BYTES)

    def encode_body(self) -> bytes:
        return self._S.pack(self.code) + self.text.encode("utf-8")

    @classmethod
    def decode_body(cls, body: bytes):
        _at_least(body, cls._S.size, cls.NAME)
        if len(body) - cls._S.size > MAX_TEXT_BYTES:
            raise MalformedFrame(f"{cls.NAME}: text is {len(body) - cls._S.size} bytes, "
                                 f"limit {MAX_TEXT_BYTES}")
        (code,) = cls._S.unpack_from(body)
        return cls(code, _utf8(body[cls._S.size:], f"{cls.NAME} text"))


@dataclass(frozen=True, slots=True)
class Error(_Coded):
    """Either way: something went wrong; code is an ErrorCode (or any u16)."""

    TYPE: ClassVar[int] = 0x09
    NAME: ClassVar[str] = "error"
    SENDER: ClassVar[str] = "either"

    code: int
    text: str = ""


@dataclass(frozen=True, slots=True)
class Bye(_Coded):
    """Either way: the sender ends the session; code is a ByeReason (or any u16)."""

    TYPE: ClassVar[int] = 0x0A
    NAME: ClassVar[str] = "bye"
    SENDER: ClassVar[str] = "either"

    code: int = ByeReason.DONE
    text: str = ""


@dataclass(frozen=True, slots=True)
class Report(Message):
    """Agent -> coordinator: its work and memory figures (DESIGN.md §7), sent once
    after the last round's result (a session is closed after Bye)."""

    TYPE: ClassVar[int] = 0x0B
    NAME: ClassVar[str] = "report"
    SENDER: ClassVar[str] = "agent"
    _S: ClassVar[struct.Struct] = struct.Struct(">I8Q")
    COUNTS: ClassVar[tuple] = ("peak_rss", "floor_rss", "learning_state", "episodes",
                               "env_steps", "comparisons", "reviewer_votes", "saturations")

    round: int
    peak_rss: int = 0          # bytes
    floor_rss: int = 0         # bytes: interpreter + numpy + mujoco + task model
    learning_state: int = 0    # bytes: theta, block scratch, buffers
    episodes: int = 0
    env_steps: int = 0
    comparisons: int = 0
    reviewer_votes: int = 0
    saturations: int = 0

    def __post_init__(self):
        _check_int(self, "round", 0, MAX_ROUND)
        for name in self.COUNTS:
            _check_int(self, name, 0, 2**64 - 1)

    def as_dict(self) -> dict:
        """The figures as a plain dict (round included)."""
        return {"round": self.round, **{name: getattr(self, name) for name in self.COUNTS}}

    def encode_body(self) -> bytes:
        return self._S.pack(self.round, *(getattr(self, name) for name in self.COUNTS))

    @classmethod
    def decode_body(cls, body: bytes) -> Report:
        _exact(body, cls._S.size, "report")
        return cls(*cls._S.unpack(body))


# The single table of message types: wire code -> class.
@dataclass(frozen=True, slots=True)
class Refusal(Message):
    """Coordinator -> agent, NOT authenticated: the answer to a Hello the
    coordinator cannot accept (a tag that does not verify under the run key:
    a wrong key or another run's; or another protocol version).

    It is the only frame the coordinator sends without knowing the agent
    holds the run key, so it carries nothing but a code (ErrorCode
    AUTH_FAILED or BAD_VERSION) and the refused Hello's nonce, echoed so
    that an agent takes it only as the answer to its own Hello (see
    session.py); no text, since whoever forged one would choose it. Its frame
    has FLAG_REFUSAL set and a zero tag, and its layout (this body after the
    7-byte header) stays the same in every protocol version, so that an
    agent can read a refusal from a coordinator of another version.
    """

    TYPE: ClassVar[int] = 0x0E
    NAME: ClassVar[str] = "refusal"
    SENDER: ClassVar[str] = "coordinator"
    _S: ClassVar[struct.Struct] = struct.Struct(f">H{NONCE_BYTES}s")

    code: int
    nonce: bytes

    def __post_init__(self):
        _check_int(self, "code", 0, 0xFFFF)
        _check_bytes(self, "nonce", NONCE_BYTES)

    def encode_body(self) -> bytes:
        return self._S.pack(self.code, self.nonce)

    @classmethod
    def decode_body(cls, body: bytes) -> Refusal:
        _exact(body, cls._S.size, cls.NAME)
        return cls(*cls._S.unpack_from(body))


def starts_round(msg) -> int | None:
    """The round that `msg` starts for its receiver (a RoundStart, or since protocol 4 a
    RoundResultNext), or None."""
    if isinstance(msg, RoundResultNext):
        return msg.next_round
    if isinstance(msg, RoundStart):
        return msg.round
    return None


MESSAGE_TYPES: dict[int, type[Message]] = {
    cls.TYPE: cls for cls in (Join, Welcome, RoundStart, Vote, RoundResult, RoundResultNext, Sync,
                              ModelUpload, ModelDownload, Error, Bye, Report, Hello, Challenge, Refusal)
}
