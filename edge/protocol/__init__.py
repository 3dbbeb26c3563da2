"""fedzo's wire protocol (version 4): messages, authentication, framing, accounting.

Layers, bottom up (each module has one job):

    framing.py      TCP: 4-byte big-endian length prefix, incremental FrameReader
    cobs.py         COBS byte stuffing
    serialframe.py  serial: COBS(packet || CRC-32) || 0x00, incremental SerialReader
    arq.py          serial: go-back-N / stop-and-wait retransmission (ArqLink), clear or sealed
    arqline.py      serial: a line's clear (handshake) and sealed (session) ARQ streams
    header.py       the 7-byte header and frame layout
    messages.py     the message dataclasses and their body codecs (MESSAGE_TYPES)
    auth.py         key derivation, HMAC-SHA256 tags, X25519 key agreement
    session.py      Session: handshake, seal/open, sequence numbers, anti-replay
    keyfile.py      the run key file: what it must hold, mode 0600
    agentkeys.py    a key per agent: its key file, K_k, the coordinator's Keyring
    accounting.py   LinkCounters: messages, frame bytes, payload bits, rejections
    endpoint.py     Endpoint / ArqEndpoint: Session + framing + counters
    chunks.py       theta hash; vectors split into / rebuilt from chunk messages
    errors.py       ProtocolError and one subclass per rejection reason

Frame (the unit the session seals and opens; at most MAX_FRAME_BYTES = 16384):

    header 7 B: version u8 (=4) | type u8 | flags u8 | seq u32 (big-endian)
    body   0..16361 B (layouts below)
    tag    16 B: HMAC-SHA256(key, [binding ||] header || body), first 16 bytes

    flags: bit 0 = handshake frame (tagged under the handshake key and bound
    to the handshake's nonces, see auth.py); bit 1 = refusal (see below);
    other bits must be 0. seq: per direction, from 0 at each Hello, strictly
    increasing.

Handshake (session.py, auth.py; docs/SECURITY.md says what it guards):

    agent  Hello{nonce_a}            tag bound to nonce_a
    coord  Challenge{nonce_c}        tag bound to nonce_a; nonce_c fresh per Hello
    agent  Join{..., A, proof}       tag bound to nonce_a || nonce_c
    coord  Welcome{..., C}           tag bound to nonce_a || nonce_c
    then session frames under keys from HMAC(run_key, nonces, A, C, X25519 secret)

    Nothing but a Challenge answers a Hello, so no Welcome (and no theta)
    goes out before a Join has proved the run key for this very handshake.
    A Hello whose tag fails (wrong key) or of another version may be answered
    with a Refusal instead: unauthenticated (flag bit 1, zero tag, seq 0),
    a code and the Hello's nonce_a; an agent takes it only as the answer to
    its own Hello (session.py). Its layout is the same in every version.

On the line: TCP adds a 4-byte length prefix (frame + 4 bytes). Serial adds a
4-byte CRC-32, COBS overhead (1 byte per started 254 bytes) and a 0x00
delimiter; with ARQ also a 5-byte ARQ header inside the COBS packet, and on
a session's packets a 6-byte ARQ tag (arq.py, arqline.py).

Messages (type code, sender, body; scalars big-endian, arrays little-endian):

    0x0C hello         agent  nonce_a 16 B = 16 B; under an agent's own key
                              (agentkeys.py) also its agent_id u32 = 20 B
    0x0D challenge     coord  nonce_c 16 B | d u32 | terms: UTF-8 JSON object
                              {task, algo, agents, dtype} to the end, or
                              empty (<= 255 B) = 20 B + terms
    0x01 join          agent  agent_id u32 (0xFFFFFFFF = assign me one)
                              | backend u8 (0 numpy, 1 c)
                              | store_bits u8 (16/32) | max_frame u32
                              | memory_budget u64 (bytes, 0 = not stated)
                              | round u32 (0xFFFFFFFF = none) | theta_hash 8 B
                              | key_share A 32 B (X25519)
                              | rejoin_proof 16 B (zero: none) = 78 B
    0x02 welcome       coord  agent_id u32 | block u16 | n_agents u16 | d u32
                              | seed u64 | round u32 | theta_hash 8 B
                              | key_share C 32 B (X25519) | config: UTF-8
                              JSON object to the end (<= 8192 B) = 64 B + config
    0x03 round_start   coord  round u32 = 4 B
    0x04 vote          agent  round u32 | vote i8 (-1/0/+1) | theta_hash 8 B = 13 B
    0x05 round_result  coord  round u32 | K u16 | theta_hash 8 B
                              | votes: 2 bits each, LSB first (00 = 0,
                              01 = +1, 10 = -1), zero padding = 14 + ceil(K/4) B
    0x0F round_result_next coord  the body of round_result (round t); it also starts
                              round t + 1 for its receiver, in place of a round_start
                              (a steady round: this down, a vote up) = 14 + ceil(K/4) B
    0x06 sync          coord  round u32 | total u32 | offset u32 (elements)
                              | dtype u8 (1 int16, 2 int32) | frac_bits u8
                              | theta_hash 8 B (whole vector) | data LE
                              = 22 B + data
    0x07 model_upload  agent  round u32 | total u32 | offset u32 | float32 LE
                              = 12 B + data
    0x08 model_download coord same as model_upload
    0x09 error         either code u16 (ErrorCode; 10 = ID_IN_USE, 11 = REVOKED) | UTF-8 text (<= 255 B)
    0x0A bye           either code u16 (ByeReason) | UTF-8 text (<= 255 B)
    0x0B report        agent  round u32 | peak_rss u64 | floor_rss u64
                              | learning_state u64 | episodes u64 | env_steps u64
                              | comparisons u64 | reviewer_votes u64
                              | saturations u64 = 68 B (after the last round)
    0x0E refusal       coord  code u16 (2 AUTH_FAILED, 1 BAD_VERSION, 11 REVOKED)
                              | nonce_a 16 B = 18 B; NOT authenticated

Frame sizes (header + body + tag; TCP adds 4): round_start 27, vote 36,
round_result and round_result_next 37 + ceil(K/4), hello 39 (43 with an id), challenge 43 + terms, join 101,
welcome 87 + config, error/bye 25 + text, refusal 41.

Payload bits (accounting.py) are 8 x the body length.

Typical use (one link side):

    counters = LinkCounters("agent-3")
    ep = Endpoint(Session(AGENT, run_key, counters=counters), LengthPrefixFraming())
    sock.sendall(ep.send(Hello()))
    for msg in ep.feed(sock.recv(65536)):      # a Challenge: answer it with the Join
        sock.sendall(ep.send(Join(capabilities=Capabilities(backend="c"))))
    ...
"""
from .accounting import DirectionStats, LinkCounters
from .arq import ArqLink
from .auth import DOWN, UP
from .chunks import (
    VectorAssembler,
    elements_per_chunk,
    model_chunks,
    sync_chunks,
    theta_hash,
)
from .cobs import cobs_decode, cobs_encode
from .constants import (
    ASSIGN_AGENT_ID,
    HASH_BYTES,
    HEADER_BYTES,
    MAX_CONFIG_BYTES,
    MAX_FRAME_BYTES,
    MAX_TEXT_BYTES,
    KEY_SHARE_BYTES,
    NONCE_BYTES,
    PROOF_BYTES,
    PROTOCOL_VERSION,
    TAG_BYTES,
)
from .endpoint import ArqEndpoint, Endpoint
from .errors import (
    BadChecksum,
    BadRefusal,
    BadTag,
    Garbage,
    HashMismatch,
    InvalidField,
    LinkFailed,
    MalformedFrame,
    OversizedFrame,
    ProtocolError,
    ReplayedFrame,
    SessionClosed,
    StaleRound,
    StreamBroken,
    TruncatedFrame,
    UnexpectedMessage,
    UnknownType,
    WrongVersion,
)
from .framing import FrameReader, LengthPrefixFraming, NoFraming, length_prefixed
from .header import Header, peek_header
from .messages import (
    MESSAGE_TYPES,
    Bye,
    ByeReason,
    Capabilities,
    Challenge,
    Error,
    ErrorCode,
    Hello,
    Join,
    Message,
    Refusal,
    ModelDownload,
    ModelUpload,
    Report,
    RoundResult,
    RoundResultNext,
    RoundStart,
    Sync,
    Vote,
    Welcome,
    config_json,
    pack_votes,
    starts_round,
    unpack_votes,
)
from .serialframe import SerialFraming, SerialReader, serial_decode, serial_encode
from .session import AGENT, COORDINATOR, RejoinSecrets, Session, State, check_round, seal_refusal
from .agentkeys import AgentKey, Keyring
from .errors import AgentRevoked, WrongAgent

__all__ = [
    # messages
    "Message", "Hello", "Challenge", "Join", "Capabilities", "Welcome", "RoundStart", "Vote", "RoundResult",
    "RoundResultNext", "Sync",
    "ModelUpload", "ModelDownload", "Error", "Bye", "Report", "Refusal", "ErrorCode", "ByeReason", "MESSAGE_TYPES",
    "config_json", "pack_votes", "unpack_votes", "starts_round",
    # session and link sides
    "Session", "State", "AGENT", "COORDINATOR", "RejoinSecrets", "check_round", "seal_refusal",
    "Endpoint", "ArqEndpoint", "ArqLink", "Header", "peek_header",
    # framing
    "FrameReader", "LengthPrefixFraming", "NoFraming", "length_prefixed",
    "SerialFraming", "SerialReader", "serial_encode", "serial_decode", "cobs_encode", "cobs_decode",
    # accounting
    "LinkCounters", "DirectionStats", "UP", "DOWN",
    # arrays
    "theta_hash", "sync_chunks", "model_chunks", "elements_per_chunk", "VectorAssembler",
    # constants
    "PROTOCOL_VERSION", "HEADER_BYTES", "TAG_BYTES", "MAX_FRAME_BYTES", "MAX_CONFIG_BYTES",
    "MAX_TEXT_BYTES", "ASSIGN_AGENT_ID", "NONCE_BYTES", "HASH_BYTES", "KEY_SHARE_BYTES", "PROOF_BYTES",
    # errors
    "ProtocolError", "TruncatedFrame", "OversizedFrame", "WrongVersion", "UnknownType", "BadTag",
    "ReplayedFrame", "BadRefusal", "MalformedFrame", "InvalidField", "UnexpectedMessage", "StaleRound",
    "BadChecksum", "Garbage", "StreamBroken", "SessionClosed", "HashMismatch", "LinkFailed",
    # a key per agent
    "AgentKey", "Keyring", "AgentRevoked", "WrongAgent",
]
