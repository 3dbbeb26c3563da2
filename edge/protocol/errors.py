"""The exceptions of the protocol: one base class, one subclass per reason.

Every class has a `reason`, the key under which rejections are counted
(`LinkCounters.rejected`, `Session.rejections`). Catch `ProtocolError` to catch
them all; nothing in fedzo.edge.protocol raises anything else on bad input.
"""


class ProtocolError(Exception):
    """Base class: bad or unacceptable input on a link."""

    reason = "protocol"


class TruncatedFrame(ProtocolError):
    """The frame or a field ends before its declared or minimum length."""

    reason = "truncated"


class OversizedFrame(ProtocolError):
    """A declared or actual length is above the protocol's maximum."""

    reason = "oversized"


class WrongVersion(ProtocolError):
    """The header's version is not PROTOCOL_VERSION."""

    reason = "wrong_version"


class UnknownType(ProtocolError):
    """An authenticated frame with a message type this version does not know."""

    reason = "unknown_type"


class BadTag(ProtocolError):
    """The authentication tag does not verify (wrong key, session or tampering)."""

    reason = "bad_tag"


class ReplayedFrame(ProtocolError):
    """A sequence number not above the last accepted one, or a reused nonce."""

    reason = "replay"


class MalformedFrame(ProtocolError):
    """The body does not decode: bad lengths, out-of-range values, bad UTF-8."""

    reason = "malformed"


class InvalidField(MalformedFrame, ValueError):
    """A message field is out of range (raised when building or decoding one)."""


class UnexpectedMessage(ProtocolError):
    """A valid message that this side may not receive (or send) in its state."""

    reason = "unexpected"


class StaleRound(ProtocolError):
    """A message for a round other than the current one."""

    reason = "stale_round"


class BadChecksum(ProtocolError):
    """A serial packet whose CRC-32 does not match (dropped, never delivered)."""

    reason = "bad_crc"


class Garbage(ProtocolError):
    """Bytes on a serial link that do not form a COBS packet."""

    reason = "garbage"


class StreamBroken(ProtocolError):
    """A byte stream that cannot be resynchronised: the caller must drop it."""

    reason = "stream_broken"


class SessionClosed(ProtocolError):
    """The session ended (Bye sent or received); no more frames either way."""

    reason = "closed"


class HashMismatch(ProtocolError):
    """A reassembled vector whose hash differs from the one its chunks carry."""

    reason = "hash_mismatch"


class BadRefusal(UnexpectedMessage):
    """A Refusal that is not the answer to this agent's own Hello (forged, replayed or late)."""

    reason = "bad_refusal"


class AgentRevoked(ProtocolError):
    """A Hello or Join under an agent's own key that the coordinator revoked (or replaced)."""

    reason = "revoked"


class WrongAgent(ProtocolError):
    """A Join for another agent id than the one whose key opened the handshake."""

    reason = "wrong_agent"


# The reasons a receiver counts, in the order reports show them.
REJECTION_REASONS = (
    "bad_tag", "replay", "wrong_version", "unknown_type", "truncated",
    "oversized", "malformed", "unexpected", "stale_round", "bad_crc",
    "garbage", "stream_broken", "closed", "hash_mismatch", "bad_refusal",
)


class LinkFailed(ProtocolError):
    """The ARQ layer gave up: the peer did not acknowledge after all retries."""

    reason = "link_failed"
