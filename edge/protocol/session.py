"""One side of one link: seals outgoing messages, opens incoming frames.

A Session knows its role (agent or coordinator), the pre-shared run key, the
handshake state and the sequence numbers; it knows nothing of transports.

Handshake and states:

    agent                                   coordinator
    IDLE --seal(Join{nonce_a})-->           IDLE --open(Join)--> HANDSHAKE
    HANDSHAKE <--open(Welcome{nonce_s})--   HANDSHAKE --seal(Welcome)--> ESTABLISHED
    ESTABLISHED                             ESTABLISHED
    (Bye either way, sent or received: CLOSED; nothing more is sealed or opened)

Join, Welcome, and Error/Bye sent before Welcome are handshake frames
(FLAG_HANDSHAKE set) tagged under the handshake key bound to the agent's
nonce; all later frames use the session keys (see auth.py).

Anti-replay:
- Each direction numbers its frames 0, 1, 2, ... from the Join on; a frame is
  accepted only if its seq is above the last accepted one (gaps are allowed,
  so a lossy transport below does not wedge the session).
- Frames of an earlier session fail the tag (other nonces, other keys).
- A replayed Join is refused if its nonce was seen before, by this session or
  by any session sharing the same NonceRegistry (the coordinator should share
  one registry across all its links of a run).
- A coordinator session accepts a fresh authenticated Join at any time: that
  is an agent restarting on the same link (serial); the session restarts.

Check order in open(): size (truncated/oversized), version, tag, sequence,
type, state/direction, body. The sequence number is consumed once the tag
verifies, even if the body is then rejected. Every rejection raises a
ProtocolError subclass and counts its reason in `counters.rejected`.
"""
from __future__ import annotations

from collections import OrderedDict
from enum import Enum

from .accounting import LinkCounters
from .auth import DOWN, UP, Tagger, check_run_key, handshake_tagger, session_tagger
from .constants import (
    FLAG_HANDSHAKE,
    KNOWN_FLAGS,
    MAX_FRAME_BYTES,
    MAX_SEQ,
    NONCE_BYTES,
)
from .errors import (
    BadTag,
    MalformedFrame,
    OversizedFrame,
    ProtocolError,
    ReplayedFrame,
    SessionClosed,
    StaleRound,
    TruncatedFrame,
    UnexpectedMessage,
    UnknownType,
)
from .header import frame_size, pack_header, split_frame
from .messages import MESSAGE_TYPES, Bye, Error, Join, Message, Welcome

AGENT = "agent"
COORDINATOR = "coordinator"
_JOIN_NONCE = slice(4, 4 + NONCE_BYTES)   # where Join's body carries the nonce


class State(Enum):
    """Handshake state of a Session."""

    IDLE = "idle"
    HANDSHAKE = "handshake"
    ESTABLISHED = "established"
    CLOSED = "closed"


class NonceRegistry:
    """The agent nonces a coordinator has accepted, to refuse replayed Joins.

    Bounded: beyond max_entries the oldest are forgotten (an attacker cannot
    make new valid Joins, so only max_entries legitimate joins can push a
    nonce out).
    """

    def __init__(self, max_entries: int = 1 << 16):
        self.max_entries = max_entries
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def add(self, nonce: bytes) -> bool:
        """Remember nonce; False if it was already there."""
        if nonce in self._seen:
            return False
        self._seen[nonce] = None
        if len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)
        return True

    def __contains__(self, nonce: bytes) -> bool:
        return nonce in self._seen

    def __len__(self) -> int:
        return len(self._seen)


def check_round(msg: Message, current_round: int) -> None:
    """Raise StaleRound unless msg carries current_round (no counting)."""
    r = msg.round_number
    if r != current_round:
        raise StaleRound(f"{msg.NAME} for round {r}, the current round is {current_round}")


class Session:
    """Seal and open frames for one side of one link."""

    def __init__(self, role: str, run_key: bytes, *, counters: LinkCounters | None = None,
                 join_nonces: NonceRegistry | None = None, max_frame: int = MAX_FRAME_BYTES):
        if role not in (AGENT, COORDINATOR):
            raise ValueError(f"role must be {AGENT!r} or {COORDINATOR!r}, got {role!r}")
        self.role = role
        self._key = check_run_key(run_key)
        self.counters = counters if counters is not None else LinkCounters()
        self.join_nonces = join_nonces if join_nonces is not None else NonceRegistry()
        self.max_frame = max_frame            # largest frame this side accepts
        self.peer_max_frame = MAX_FRAME_BYTES  # largest frame the peer accepts
        self.send_direction = UP if role == AGENT else DOWN
        self.recv_direction = DOWN if role == AGENT else UP
        self._peer_role = COORDINATOR if role == AGENT else AGENT
        self._reset(None)

    # -- state ----------------------------------------------------------------

    def _reset(self, agent_nonce: bytes | None) -> None:
        self.state = State.IDLE if agent_nonce is None else State.HANDSHAKE
        self.agent_nonce = agent_nonce
        self.session_nonce: bytes | None = None
        self.send_seq = 0          # seq of the next frame we seal
        self.recv_seq = -1         # seq of the last frame we accepted
        self._tx: Tagger | None = None    # handshake taggers
        self._rx: Tagger | None = None
        self._stx: Tagger | None = None   # session taggers
        self._srx: Tagger | None = None
        if agent_nonce is not None:
            self._tx = handshake_tagger(self._key, self.send_direction, agent_nonce)
            self._rx = handshake_tagger(self._key, self.recv_direction, agent_nonce)

    def _establish(self, session_nonce: bytes) -> None:
        self.state = State.ESTABLISHED
        self.session_nonce = session_nonce
        self._stx = session_tagger(self._key, self.send_direction, self.agent_nonce, session_nonce)
        self._srx = session_tagger(self._key, self.recv_direction, self.agent_nonce, session_nonce)

    @property
    def established(self) -> bool:
        """True once the handshake completed (and until Bye)."""
        return self.state is State.ESTABLISHED

    @property
    def rejections(self) -> dict[str, int]:
        """Rejected frames by reason (the counters' dict)."""
        return self.counters.rejected

    # -- sending --------------------------------------------------------------

    def seal(self, msg: Message) -> bytes:
        """Encode msg into a frame: header, body, tag; advances the send seq.

        Raises UnexpectedMessage if this side may not send msg now,
        OversizedFrame if the frame exceeds what the peer accepts, and
        SessionClosed after Bye or when sequence numbers run out.
        """
        cls = type(msg)
        if MESSAGE_TYPES.get(getattr(cls, "TYPE", None)) is not cls:
            raise TypeError(f"not a protocol message: {msg!r}")
        if self.state is State.CLOSED:
            raise SessionClosed(f"cannot send {cls.NAME}: the session is closed")
        if cls.SENDER not in (self.role, "either"):
            raise UnexpectedMessage(f"the {self.role} does not send {cls.NAME}")
        if cls is Join:
            self._reset(msg.nonce)          # every Join starts a new session
            handshake = True
        elif self.state is State.HANDSHAKE:
            allowed = (Welcome, Error, Bye) if self.role == COORDINATOR else (Error, Bye)
            if cls not in allowed:
                raise UnexpectedMessage(f"cannot send {cls.NAME} before the handshake completes")
            handshake = True
        elif self.state is State.ESTABLISHED:
            if cls is Welcome:
                raise UnexpectedMessage("welcome was already sent in this session")
            handshake = False
        else:
            raise UnexpectedMessage(f"cannot send {cls.NAME}: "
                                    + ("send a join first" if self.role == AGENT else "no join received"))
        if self.send_seq > MAX_SEQ:
            raise SessionClosed("sequence numbers exhausted: the agent must rejoin")
        body = msg.encode_body()
        size = frame_size(len(body))
        if size > self.peer_max_frame:
            raise OversizedFrame(f"{cls.NAME} frame of {size} bytes exceeds the peer's "
                                 f"maximum of {self.peer_max_frame}")
        header = pack_header(cls.TYPE, FLAG_HANDSHAKE if handshake else 0, self.send_seq)
        tagger = self._tx if handshake else self._stx
        frame = header + body + tagger.tag(header, body)
        self.send_seq += 1
        self._advance_state(msg)
        return frame

    def _advance_state(self, msg: Message) -> None:
        """A Welcome, sent or received, establishes the session; a Bye closes it."""
        if type(msg) is Welcome:
            self._establish(msg.nonce)
        elif type(msg) is Bye:
            self.state = State.CLOSED

    # -- receiving ------------------------------------------------------------

    def open(self, frame) -> Message:
        """Verify and decode a received frame; raise (and count) a ProtocolError if bad."""
        try:
            return self._open(frame)
        except ProtocolError as exc:
            self.counters.reject(exc.reason)
            raise

    def _open(self, frame) -> Message:
        header, hbytes, body, tag = split_frame(frame, self.max_frame)
        if self.state is State.CLOSED:
            raise SessionClosed("frame received after the session closed")
        handshake = bool(header.flags & FLAG_HANDSHAKE)
        if handshake and self.role == COORDINATOR and header.type == Join.TYPE:
            return self._open_join(header, hbytes, body, tag)
        if handshake:
            if self.agent_nonce is None:
                raise UnexpectedMessage("handshake frame before any join")
            tagger = self._rx
        elif self.state is State.ESTABLISHED:
            tagger = self._srx
        else:
            raise UnexpectedMessage(f"session frame while {self.state.value}")
        if not tagger.verify(hbytes, body, tag):
            raise BadTag(f"bad tag on a {'handshake' if handshake else 'session'} frame "
                         f"(seq {header.seq}): wrong key, other session or corrupted")
        if header.seq <= self.recv_seq:
            raise ReplayedFrame(f"seq {header.seq} is not above the last accepted {self.recv_seq}")
        self.recv_seq = header.seq
        cls = self._message_class(header)
        if handshake:
            allowed = (Welcome, Error, Bye) if self.role == AGENT else (Error, Bye)
            if self.state is not State.HANDSHAKE or cls not in allowed:
                raise UnexpectedMessage(f"{cls.NAME} as a handshake frame while {self.state.value}")
        elif cls in (Join, Welcome):
            raise UnexpectedMessage(f"{cls.NAME} must be a handshake frame")
        msg = cls.decode_body(body)
        self._advance_state(msg)
        return msg

    def _message_class(self, header) -> type[Message]:
        if header.flags & ~KNOWN_FLAGS:
            raise MalformedFrame(f"unknown flag bits 0x{header.flags & ~KNOWN_FLAGS:02x}")
        cls = MESSAGE_TYPES.get(header.type)
        if cls is None:
            raise UnknownType(f"unknown message type 0x{header.type:02x}")
        if cls.SENDER not in (self._peer_role, "either"):
            raise UnexpectedMessage(f"the {self._peer_role} does not send {cls.NAME}")
        return cls

    def _open_join(self, header, hbytes, body, tag) -> Join:
        if len(body) < _JOIN_NONCE.stop:
            raise TruncatedFrame(f"join body of {len(body)} bytes cannot hold its nonce")
        nonce = body[_JOIN_NONCE]
        if not handshake_tagger(self._key, UP, nonce).verify(hbytes, body, tag):
            raise BadTag("bad tag on a join: wrong run key or corrupted")
        if nonce == self.agent_nonce or nonce in self.join_nonces:
            raise ReplayedFrame("join with a nonce seen before (replayed join)")
        self._message_class(header)
        msg = Join.decode_body(body)
        self.join_nonces.add(nonce)
        self._reset(nonce)
        self.recv_seq = header.seq
        self.peer_max_frame = msg.capabilities.max_frame
        return msg

    # -- helpers --------------------------------------------------------------

    def check_round(self, msg: Message, current_round: int) -> None:
        """Raise and count StaleRound unless msg is for current_round."""
        try:
            check_round(msg, current_round)
        except StaleRound:
            self.counters.reject(StaleRound.reason)
            raise

    def __repr__(self) -> str:
        return (f"Session({self.role}, {self.state.value}, send_seq={self.send_seq}, "
                f"recv_seq={self.recv_seq})")
