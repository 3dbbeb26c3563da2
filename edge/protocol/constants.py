"""Protocol-wide numbers: version, sizes and limits, in one place.

Everything a peer must agree on to talk to another peer is here; changing any
of these values is a protocol change and must bump PROTOCOL_VERSION.
"""

# The theta hash is defined with the store's formats; its length is part of the wire.
from fedzo.edge.learning.store_format import HASH_BYTES  # noqa: F401

# Bumped on any incompatible change of the header, a body layout, the MAC
# construction or the key derivation.
# 2: Hello/Challenge before Join, X25519 session keys, rejoin proofs.
# 3: the Challenge carries d and the run's terms (an agent checks its memory
#    budget before it takes a slot); the unauthenticated Refusal frame.
# 4: round_result_next (0x0F): a round's result that also starts the next round
#    for its receiver, so a steady round is one frame each way (no RoundStart).
PROTOCOL_VERSION = 4

# Header: version u8, type u8, flags u8, sequence number u32 (big-endian).
HEADER_FORMAT = ">BBBI"
HEADER_BYTES = 7

# Authentication tag: HMAC-SHA256 truncated to its first 16 bytes (128 bits).
TAG_BYTES = 16

# Largest message frame (header + body + tag), before any transport framing
# (TCP length prefix, or COBS + CRC on serial). A receiver never buffers more
# than this (plus the transport's own small overhead) for one frame. 16 KiB
# keeps the receive buffer small for boards with little RAM and keeps a serial
# retransmission short; larger arrays are sent in chunks.
MAX_FRAME_BYTES = 16384
MIN_FRAME_BYTES = HEADER_BYTES + TAG_BYTES

# Smallest frame limit an agent may announce in Join: it must at least fit a
# Welcome with a modest config and a sync chunk of a few elements.
MIN_PEER_MAX_FRAME = 1024

# Flags byte.
FLAG_HANDSHAKE = 0x01          # MAC'd under the handshake key (see auth.py)
# A Refusal: not authenticated (zero tag), read only as the answer to the
# reader's own Hello (session.py). Frozen across versions, like its body.
FLAG_REFUSAL = 0x02
KNOWN_FLAGS = FLAG_HANDSHAKE | FLAG_REFUSAL

# Reserved agent id in Join: "assign me one".
ASSIGN_AGENT_ID = 0xFFFFFFFF
# Round field sentinel in Join: "I have no state" (first join).
NO_ROUND = 0xFFFFFFFF
MAX_ROUND = 0xFFFFFFFE
MAX_SEQ = 0xFFFFFFFF

# Nonces and hashes.
NONCE_BYTES = 16
MIN_KEY_BYTES = 16
# X25519 key shares (Join, Welcome) and the rejoin proof in Join.
KEY_SHARE_BYTES = 32
PROOF_BYTES = 16

# Bounded variable-length fields.
MAX_CONFIG_BYTES = 8192        # Welcome run config, UTF-8 JSON object
MAX_TEXT_BYTES = 255           # Error / Bye text, UTF-8
MAX_TERMS_BYTES = 255          # Challenge: the run's terms, a small UTF-8 JSON object
MAX_AGENTS = 0xFFFF            # K is carried as u16

# Largest parameter vector a chunk assembler accepts (elements). The policies
# here have ~10^4 parameters; this bound caps what a (trusted but buggy) peer
# can make a receiver allocate for reassembly.
MAX_VECTOR_ELEMENTS = 1 << 24

# TCP framing: 4-byte big-endian length prefix, value = message frame length.
LENGTH_PREFIX_BYTES = 4

# Serial framing: COBS(packet || CRC-32 big-endian) followed by one 0x00.
CRC_BYTES = 4
