"""One side of one link: seals outgoing messages, opens incoming frames.

A Session knows its role (agent or coordinator), the pre-shared run key, the
handshake state and the sequence numbers; it knows nothing of transports.

Handshake (protocol version 2) and states:

    agent                                       coordinator
    IDLE --seal(Hello{nonce_a})-->              any --open(Hello)--> GREETED
    GREETED <--open(Challenge{nonce_c})--       GREETED --seal(Challenge)--> CHALLENGED
    CHALLENGED --seal(Join{A, proof})-->        CHALLENGED --open(Join)--> JOINED
    JOINED <--open(Welcome{C})--                JOINED --seal(Welcome)--> ESTABLISHED
    ESTABLISHED                                 ESTABLISHED
    (Bye either way, sent or received: CLOSED; nothing more is sealed or opened)

Hello, Challenge, Join, Welcome, and Error/Bye sent before Welcome are
handshake frames (FLAG_HANDSHAKE set), tagged under the handshake keys and
bound to nonce_a (and to nonce_c once the Challenge has passed); all later
frames use the session keys, which come from an X25519 agreement between the
key shares in Join and Welcome (see auth.py). The session fills in the key
shares and the rejoin proof when it seals a Join or a Welcome.

Freshness: nonce_c is drawn anew for every Hello, and the Join is tagged
over it. A recorded Join therefore fails against any later handshake, on
this coordinator or on one restarted with the same run key, and nothing but
a Challenge is sent before a Join has verified (no Welcome, no theta).

Rejoin secrets: an established session has a rejoin secret R (auth.py). The
agent's Session keeps the R of its last established session across Hellos
and proves it in its next Join; the coordinator's sessions share one
RejoinSecrets table (agent id -> R of the session last welcomed under that
id) and mark a Join whose proof verifies (Join.rejoin_proven). Whether a
Join may take over an agent id held by a live link is the coordinator
runtime's rule (coordinator/rounds/runtime.py).

A key per agent (agentkeys.py): an agent's Session built with its AgentKey
uses K_k in the place of the run key and puts k in its Hello; the
coordinator's Session built with the run's Keyring looks k up at each Hello
and verifies the Hello under K_k alone (no key, or a wrong tag: AUTH_FAILED;
a verified Hello of a revoked id: AgentRevoked, answered with a Refusal
REVOKED). The Join must then be for k (else WrongAgent) while K_k is still
k's key and k is not revoked; everything after is under keys derived from
K_k. Refusals of this kind are counted in Keyring.refused as well as in the
link's rejections.

Anti-replay:
- Each direction numbers its frames 0, 1, 2, ... from the Hello on; a frame
  is accepted only if its seq is above the last accepted one (gaps are
  allowed, so a lossy transport below does not wedge the session).
- Frames of an earlier session fail the tag (other nonces, other keys).
- A coordinator session accepts an authenticated Hello at any time: that is
  an agent restarting on the same link (serial); the session restarts. (A
  replayed Hello only earns a Challenge that nobody can answer.)

Refusals (protocol 3): a coordinator that cannot accept a Hello (its tag
does not verify under the run key, or it speaks another version) can answer
with a Refusal, the one frame not authenticated: FLAG_REFUSAL, a zero tag,
a code and the refused Hello's nonce_a (messages.py). `refuse_hello` marks
such a rejection with the Refusal to send (`exc.refusal`); the transport
decides whether to send it (coordinator/transports/refusals.py, rate-limited
per source). An agent's Session takes a Refusal only while GREETED (its
Hello sent, no Challenge yet) and only if it echoes its own nonce_a; any
other is rejected as "bad_refusal" and changes nothing. So a stranger who
has not seen this agent's Hello cannot make it stop; one who sees the link
and can write on it can (and could cut the link anyway): docs/SECURITY.md.

Check order in open(): refusal (agent: before the version, whose layout it
does not depend on), size (truncated/oversized), version, tag, sequence,
type, state/direction, body. The sequence number is consumed once the tag
verifies, even if the body is then rejected. Every rejection raises a
ProtocolError subclass and counts its reason in `counters.rejected`.
"""
from __future__ import annotations

import dataclasses
import hmac
from enum import Enum

from .accounting import LinkCounters
from .agentkeys import AgentKey, Keyring
from .auth import (
    DOWN,
    UP,
    Tagger,
    arq_key,
    check_run_key,
    handshake_tagger,
    new_key_pair,
    rejoin_proof,
    rejoin_secret,
    session_master,
    session_tagger,
    shared_secret,
)
from .constants import (
    ASSIGN_AGENT_ID,
    FLAG_HANDSHAKE,
    FLAG_REFUSAL,
    HEADER_BYTES,
    KNOWN_FLAGS,
    MAX_FRAME_BYTES,
    MAX_SEQ,
    NONCE_BYTES,
    TAG_BYTES,
)
from .errors import (
    AgentRevoked,
    BadRefusal,
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
    WrongAgent,
    WrongVersion,
)
from .header import frame_size, pack_header, peek_header, split_frame
from .messages import (
    MESSAGE_TYPES,
    NO_PROOF,
    Bye,
    Challenge,
    Error,
    ErrorCode,
    Hello,
    Join,
    Message,
    Refusal,
    Welcome,
)

AGENT = "agent"
COORDINATOR = "coordinator"
_HANDSHAKE_TYPES = (Hello, Challenge, Join, Welcome)


class State(Enum):
    """Handshake state of a Session."""

    IDLE = "idle"
    GREETED = "greeted"          # Hello sent / received
    CHALLENGED = "challenged"    # Challenge sent / received
    JOINED = "joined"            # Join sent / received, Welcome not yet
    ESTABLISHED = "established"
    CLOSED = "closed"


_HANDSHAKING = (State.GREETED, State.CHALLENGED, State.JOINED)


class RejoinSecrets:
    """The coordinator's table: agent id -> rejoin secret of the session last
    welcomed under that id. Shared by all of a run's coordinator sessions;
    one entry per agent id the runtime welcomed, so it is bounded by K."""

    def __init__(self):
        self._by_id: dict[int, bytes] = {}

    def set(self, agent_id: int, secret: bytes) -> None:
        self._by_id[agent_id] = secret

    def get(self, agent_id: int) -> bytes | None:
        return self._by_id.get(agent_id)

    def __len__(self) -> int:
        return len(self._by_id)


def seal_refusal(msg: Refusal) -> bytes:
    """The frame of a Refusal: header with FLAG_REFUSAL and seq 0, body, zero tag.
    Nothing authenticates it; no session state is involved or changed."""
    return pack_header(Refusal.TYPE, FLAG_REFUSAL, 0) + msg.encode_body() + bytes(TAG_BYTES)


def refuse_hello(frame, exc: ProtocolError) -> ProtocolError:
    """Mark the rejection of a Hello frame with the Refusal that answers it (exc.refusal):
    AUTH_FAILED for a tag that does not verify, BAD_VERSION for another version,
    REVOKED for an agent key the coordinator revoked (its tag verified).
    A frame that is not a Hello, or too short to hold a nonce, gets none."""
    code = (ErrorCode.BAD_VERSION if isinstance(exc, WrongVersion)
            else ErrorCode.REVOKED if isinstance(exc, AgentRevoked) else ErrorCode.AUTH_FAILED)
    try:
        header = peek_header(frame)
    except ProtocolError:
        return exc
    body = bytes(frame[HEADER_BYTES:len(frame) - TAG_BYTES])
    if header.type == Hello.TYPE and len(body) >= NONCE_BYTES:
        exc.refusal = Refusal(code, body[:NONCE_BYTES])
    return exc


def check_round(msg: Message, current_round: int) -> None:
    """Raise StaleRound unless msg carries current_round (no counting)."""
    r = msg.round_number
    if r != current_round:
        raise StaleRound(f"{msg.NAME} for round {r}, the current round is {current_round}")


def _is_refusal(frame) -> bool:
    """A frame laid out as a Refusal (whatever its version): flag and type, right size."""
    if len(frame) < HEADER_BYTES + TAG_BYTES:
        return False
    header = peek_header(frame)
    return bool(header.flags & FLAG_REFUSAL) and header.type == Refusal.TYPE


class Session:
    """Seal and open frames for one side of one link."""

    def __init__(self, role: str, run_key: bytes | AgentKey | Keyring, *, counters: LinkCounters | None = None,
                 rejoin_secrets: RejoinSecrets | None = None, max_frame: int = MAX_FRAME_BYTES):
        """run_key: the run's key (bytes); or, with a key per agent (agentkeys.py), the
        agent's own AgentKey (role AGENT) or the coordinator's Keyring (role COORDINATOR)."""
        if role not in (AGENT, COORDINATOR):
            raise ValueError(f"role must be {AGENT!r} or {COORDINATOR!r}, got {role!r}")
        self.role = role
        # With agent keys: the agent's own id (agent), or the id whose key the
        # current handshake is under (coordinator; None until a Hello verified).
        self.keyed_id: int | None = None
        self._keyring: Keyring | None = None
        if isinstance(run_key, AgentKey):
            if role != AGENT:
                raise ValueError("an AgentKey is an agent's key; a coordinator takes a Keyring")
            self._key, self.keyed_id = run_key.root, run_key.agent_id
        elif isinstance(run_key, Keyring):
            if role != COORDINATOR:
                raise ValueError("a Keyring is the coordinator's; an agent takes its AgentKey")
            self._keyring, self._key = run_key, None
        else:
            self._key = check_run_key(run_key)
        self.counters = counters if counters is not None else LinkCounters()
        self.rejoin_secrets = rejoin_secrets if rejoin_secrets is not None else RejoinSecrets()
        self.max_frame = max_frame            # largest frame this side accepts
        self.peer_max_frame = MAX_FRAME_BYTES  # largest frame the peer accepts
        self.send_direction = UP if role == AGENT else DOWN
        self.recv_direction = DOWN if role == AGENT else UP
        self._peer_role = COORDINATOR if role == AGENT else AGENT
        # Agent: the rejoin secret of the last established session (kept across Hellos).
        self.rejoin_secret: bytes | None = None
        self._reset(None)

    # -- state ----------------------------------------------------------------

    def _reset(self, agent_nonce: bytes | None) -> None:
        self.state = State.IDLE if agent_nonce is None else State.GREETED
        self.agent_nonce = agent_nonce
        self.challenge: bytes | None = None      # nonce_c
        self.send_seq = 0          # seq of the next frame we seal
        self.recv_seq = -1         # seq of the last frame we accepted
        self._tx: Tagger | None = None    # handshake taggers
        self._rx: Tagger | None = None
        self._stx: Tagger | None = None   # session taggers
        self._srx: Tagger | None = None
        self._private: bytes | None = None       # our ephemeral X25519 key
        self._shares: tuple | None = None        # (A, C): the key shares, ours once sent
        self._shared: bytes | None = None        # Z (coordinator: computed at the Join)
        # (send key, receive key) of the serial ARQ's sealed packets, once established;
        # kept after Bye, so the packets of a last Bye can still be sealed.
        self.arq_keys: tuple[bytes, bytes] | None = None
        if agent_nonce is not None:
            self._bind(agent_nonce)

    def _bind(self, binding: bytes) -> None:
        self._tx = handshake_tagger(self._key, self.send_direction, binding)
        self._rx = handshake_tagger(self._key, self.recv_direction, binding)

    def _challenged(self, challenge: bytes) -> None:
        self.state = State.CHALLENGED
        self.challenge = challenge
        self._bind(self.agent_nonce + challenge)

    def _establish(self, agent_share: bytes, coordinator_share: bytes, shared: bytes) -> bytes:
        master = session_master(self._key, self.agent_nonce, self.challenge, agent_share,
                                coordinator_share, shared)
        self.state = State.ESTABLISHED
        self._stx = session_tagger(master, self.send_direction)
        self._srx = session_tagger(master, self.recv_direction)
        self.arq_keys = (arq_key(master, self.send_direction), arq_key(master, self.recv_direction))
        self._private = self._shared = None
        return rejoin_secret(master)

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
        if MESSAGE_TYPES.get(getattr(cls, "TYPE", None)) is not cls or cls is Refusal:
            raise TypeError(f"not a protocol message a session seals: {msg!r} (a Refusal: seal_refusal)")
        if cls.SENDER not in (self.role, "either"):
            raise UnexpectedMessage(f"the {self.role} does not send {cls.NAME}")
        if cls is Hello:
            if self.keyed_id is not None:   # under an agent's own key: say whose
                msg = dataclasses.replace(msg, agent_id=self.keyed_id)
            self._reset(msg.nonce)          # every Hello starts a new session
        elif self.state is State.CLOSED:
            raise SessionClosed(f"cannot send {cls.NAME}: the session is closed")
        elif cls is Challenge:
            self._expect(State.GREETED, cls)
        elif cls is Join:
            self._expect(State.CHALLENGED, cls)
            msg = self._fill_join(msg)
        elif cls is Welcome:
            self._expect(State.JOINED, cls)
            msg = dataclasses.replace(msg, key_share=self._shares[1])
        elif self.state in _HANDSHAKING:
            if cls not in (Error, Bye):
                raise UnexpectedMessage(f"cannot send {cls.NAME} before the handshake completes")
        elif self.state is not State.ESTABLISHED:
            raise UnexpectedMessage(f"cannot send {cls.NAME}: "
                                    + ("send a hello first" if self.role == AGENT else "no hello received"))
        handshake = self.state is not State.ESTABLISHED
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
        self._after_seal(msg)
        return frame

    def _expect(self, state: State, cls) -> None:
        if self.state is not state:
            raise UnexpectedMessage(f"cannot send {cls.NAME} while {self.state.value}")

    def _fill_join(self, msg: Join) -> Join:
        """Agent: our key share, and the proof of the last session's rejoin secret if we hold one.
        Under an agent's own key, the Join is for that agent (an assigned id becomes it)."""
        if self.keyed_id is not None and msg.agent_id != self.keyed_id:
            if msg.agent_id != ASSIGN_AGENT_ID:
                raise ValueError(f"a join as agent {msg.agent_id} under agent {self.keyed_id}'s key")
            msg = dataclasses.replace(msg, agent_id=self.keyed_id)
        self._private, share = new_key_pair()
        self._shares = (share, None)
        proof = NO_PROOF
        if self.rejoin_secret is not None:
            proof = rejoin_proof(self.rejoin_secret, self.agent_nonce, self.challenge, share)
        return dataclasses.replace(msg, key_share=share, rejoin_proof=proof)

    def _after_seal(self, msg: Message) -> None:
        cls = type(msg)
        if cls is Challenge:
            self._challenged(msg.nonce)
        elif cls is Join:
            self.state = State.JOINED
        elif cls is Welcome:
            secret = self._establish(*self._shares, self._shared)
            self.rejoin_secrets.set(msg.agent_id, secret)
        elif cls is Bye:
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
        if self.role == AGENT and _is_refusal(frame):
            return self._open_refusal(frame)
        try:
            header, hbytes, body, tag = split_frame(frame, self.max_frame)
        except WrongVersion as exc:
            raise refuse_hello(frame, exc) if self.role == COORDINATOR else exc
        handshake = bool(header.flags & FLAG_HANDSHAKE)
        if handshake and self.role == COORDINATOR and header.type == Hello.TYPE:
            try:
                return self._open_hello(header, hbytes, body, tag)
            except (BadTag, AgentRevoked) as exc:
                raise refuse_hello(frame, exc)
        if self.state is State.CLOSED:
            raise SessionClosed("frame received after the session closed")
        if handshake:
            if self.state not in _HANDSHAKING:
                raise UnexpectedMessage(f"handshake frame while {self.state.value}")
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
            self._check_handshake_order(cls)
        elif cls in _HANDSHAKE_TYPES:
            raise UnexpectedMessage(f"{cls.NAME} must be a handshake frame")
        msg = cls.decode_body(body)
        if cls is Join:
            return self._take_join(msg)
        if cls is Welcome:
            self._take_welcome(msg)
        elif cls is Challenge:
            self._challenged(msg.nonce)
        elif cls is Bye:
            self.state = State.CLOSED
        return msg

    def _check_handshake_order(self, cls) -> None:
        expected = {State.GREETED: Challenge, State.CHALLENGED: Join, State.JOINED: Welcome}[self.state]
        if cls is not expected and cls not in (Error, Bye):
            raise UnexpectedMessage(f"{cls.NAME} as a handshake frame while {self.state.value}")

    def _message_class(self, header) -> type[Message]:
        if header.flags & ~KNOWN_FLAGS:
            raise MalformedFrame(f"unknown flag bits 0x{header.flags & ~KNOWN_FLAGS:02x}")
        cls = MESSAGE_TYPES.get(header.type)
        if cls is None:
            raise UnknownType(f"unknown message type 0x{header.type:02x}")
        if cls.SENDER not in (self._peer_role, "either"):
            raise UnexpectedMessage(f"the {self._peer_role} does not send {cls.NAME}")
        return cls

    def _open_hello(self, header, hbytes, body, tag) -> Hello:
        if len(body) < NONCE_BYTES:
            raise TruncatedFrame(f"hello body of {len(body)} bytes cannot hold its nonce")
        nonce = bytes(body[:NONCE_BYTES])
        key, keyed_id = self._hello_key(body)
        verified = handshake_tagger(key or self._keyring.decoy, UP, nonce).verify(hbytes, body, tag)
        if key is None:
            # Checked all the same (under a key nobody holds), so that an id without a
            # key here costs what a wrong tag costs: no probing for ids by timing.
            self._keyring.refused["no_key"] += 1
            raise BadTag(f"a hello for agent {keyed_id}, who has no key here")
        if not verified:
            raise BadTag("bad tag on a hello: wrong " + ("run key" if keyed_id is None else
                                                        f"key for agent {keyed_id}") + " or corrupted")
        if keyed_id is not None and self._keyring.is_revoked(keyed_id):
            self._keyring.refused["revoked"] += 1
            raise AgentRevoked(f"hello from agent {keyed_id}, whose key is revoked")
        if nonce == self.agent_nonce:
            raise ReplayedFrame("hello repeats this session's nonce")
        self._message_class(header)
        msg = Hello.decode_body(body)
        self._key, self.keyed_id = key, keyed_id     # the key this session is now under
        self._reset(nonce)
        self.recv_seq = header.seq
        return msg

    def _hello_key(self, body) -> tuple[bytes | None, int | None]:
        """Coordinator: (the key a Hello's tag must verify under, the agent id it names).
        Under the run key: (run key, None). With a Keyring: (the key of the id the Hello
        names or None if it has none here, that id); BadTag (a Refusal AUTH_FAILED, as
        for any wrong key) for a Hello that names no id."""
        if self._keyring is None:
            return self._key, None
        if len(body) != NONCE_BYTES + Hello._ID.size:
            raise BadTag("a hello without an agent id: this coordinator takes a key per agent")
        agent_id = Hello._ID.unpack_from(body, NONCE_BYTES)[0]
        return self._keyring.root(agent_id), agent_id

    def _open_refusal(self, frame) -> Refusal:
        """Agent: a Refusal counts only as the answer to our own Hello (see the module docstring)."""
        body = bytes(frame[HEADER_BYTES:len(frame) - TAG_BYTES])
        try:
            msg = Refusal.decode_body(body)
        except ProtocolError as exc:
            raise BadRefusal(f"refusal: {exc}") from None
        if any(frame[len(frame) - TAG_BYTES:]):
            raise BadRefusal("refusal with a non-zero tag")
        if self.state is not State.GREETED or msg.nonce != self.agent_nonce:
            raise BadRefusal(f"refusal (code {msg.code}) that does not answer this session's hello "
                             f"(state {self.state.value}); ignored")
        self.state = State.CLOSED
        return msg

    def _take_join(self, msg: Join) -> Join:
        """Coordinator: the Join verified; agree on Z and check the rejoin proof.
        Under an agent's key, the Join must be for that agent, and the key must still be
        its current one and not revoked (a reload may have come since the Hello)."""
        if self.keyed_id is not None:
            if msg.agent_id != self.keyed_id:
                self._keyring.refused["wrong_agent"] += 1
                raise WrongAgent(f"a join as agent {msg.agent_id} under agent {self.keyed_id}'s key")
            if not self._keyring.accepts(self.keyed_id, self._key):
                self._keyring.refused["revoked"] += 1
                raise AgentRevoked(f"a join from agent {self.keyed_id}, whose key was revoked or replaced")
        self._private, share = new_key_pair()
        try:
            self._shared = shared_secret(self._private, msg.key_share)
        except ValueError as exc:
            raise MalformedFrame(f"join: {exc}") from None
        self._shares = (msg.key_share, share)
        self.peer_max_frame = msg.capabilities.max_frame
        self.state = State.JOINED
        secret = self.rejoin_secrets.get(msg.agent_id)
        proven = secret is not None and hmac.compare_digest(
            rejoin_proof(secret, self.agent_nonce, self.challenge, msg.key_share), msg.rejoin_proof)
        return dataclasses.replace(msg, rejoin_proven=proven)

    def _take_welcome(self, msg: Welcome) -> None:
        """Agent: the Welcome verified; agree on Z and derive the session keys."""
        try:
            shared = shared_secret(self._private, msg.key_share)
        except ValueError as exc:
            raise MalformedFrame(f"welcome: {exc}") from None
        self.rejoin_secret = self._establish(self._shares[0], msg.key_share, shared)

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
