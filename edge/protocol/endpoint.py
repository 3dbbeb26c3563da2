"""A link side ready for a transport: Session + framing + LinkCounters.

`Endpoint` is for transports that write at once (TCP, in-process queues, or
serial without ARQ): `send(msg)` returns the bytes to write, `feed(data)`
returns the messages the bytes completed. `ArqEndpoint` is for serial links
with retransmission: `send(msg, now)` queues, `output()` returns the bytes to
write, `feed(data, now)` and `tick(now)` drive the ARQ.

Frames rejected by the session are counted (by the session, by reason) and
kept in `errors` (the last 32), and `feed` goes on with the next frame: a bad
frame on a link is not a reason to stop reading it. Only a broken TCP stream
(a length prefix above the maximum) raises out of feed: OversizedFrame first
(its `messages` attribute holds the messages completed before the bad length
in that call), StreamBroken after; the caller must close that connection.

Byte accounting: a message's frame_bytes are its bytes on the line (first
transmission). Received bytes that did not end up in an accepted message,
and on ARQ links the retransmissions, acknowledgements and resets, go to
other_bytes, so frame_bytes + other_bytes always equals the bytes written
(or read) once nothing is buffered.
"""
from __future__ import annotations

from collections import deque

from .arq import ArqLink
from .constants import MIN_FRAME_BYTES
from .errors import OversizedFrame, ProtocolError
from .framing import LengthPrefixFraming
from .messages import Message
from .session import Session


def payload_bits(frame) -> int:
    """Payload bits of a message frame: 8 x its body length."""
    return 8 * (len(frame) - MIN_FRAME_BYTES)


class _Receiving:
    """The receive side shared by both endpoints."""

    session: Session

    def _init_receive(self) -> None:
        self.counters = self.session.counters
        self.errors: deque[ProtocolError] = deque(maxlen=32)

    def _count_reader_reject(self, exc: ProtocolError, nbytes: int) -> None:
        # The bytes are counted by _accept (as other_bytes); only the reason here.
        self.counters.reject(exc.reason)

    def _open_one(self, frame, wire: int) -> Message | None:
        """Open one frame of `wire` line bytes; the message (counted), or None (rejected)."""
        try:
            msg = self.session.open(frame)
        except ProtocolError as exc:   # already counted by the session
            self.errors.append(exc)
            return None
        self.counters.record_message(self.session.recv_direction, wire, payload_bits(frame),
                                     round_number=msg.round_number, type_name=msg.NAME)
        return msg

    def _accept(self, pairs, nbytes: int, pending_change: int) -> list[Message]:
        """Open each (frame, wire size); count accepted and other bytes."""
        messages, accepted = [], 0
        for frame, wire in pairs:
            msg = self._open_one(frame, wire)
            if msg is not None:
                accepted += wire
                messages.append(msg)
        self.counters.record_other(self.session.recv_direction, nbytes - accepted - pending_change)
        return messages


class Endpoint(_Receiving):
    """Session + framing + counters for transports that write at once."""

    def __init__(self, session: Session, framing=None):
        self.session = session
        self.framing = framing if framing is not None else LengthPrefixFraming(session.max_frame)
        self._init_receive()
        self._reader = self.framing.reader(on_reject=self._count_reader_reject)

    def send(self, msg: Message) -> bytes:
        """Seal and frame msg; return the bytes to write (counted as sent)."""
        frame = self.session.seal(msg)
        wire = self.framing.wrap(frame)
        self.counters.record_message(self.session.send_direction, len(wire), payload_bits(frame),
                                     round_number=msg.round_number, type_name=msg.NAME)
        return wire

    def feed(self, data) -> list[Message]:
        """Messages completed by the received bytes (bad frames are counted and skipped).

        Raises OversizedFrame (with .messages) or StreamBroken on a broken TCP stream.
        """
        before = self._reader.pending
        try:
            pairs = self._reader.feed_sized(data)
        except OversizedFrame as exc:      # broken TCP stream: keep what came before it
            exc.messages = self._accept(exc.frames, len(data), self._reader.pending - before)
            raise
        return self._accept(pairs, len(data), self._reader.pending - before)

    def close(self) -> None:
        """At end of stream: TruncatedFrame if a frame was cut off."""
        self._reader.close()


class ArqEndpoint(_Receiving):
    """Session + ARQ serial link + counters (see the module docstring)."""

    def __init__(self, session: Session, arq: ArqLink | None = None):
        self.session = session
        self.arq = arq if arq is not None else ArqLink()
        self._init_receive()
        self.arq.on_reject = self.counters.reject
        self._other_out = self.arq.stats["bytes_other"]

    def send(self, msg: Message, now: float) -> None:
        """Seal msg and queue it; its bytes come out of output()."""
        frame = self.session.seal(msg)
        wire = self.arq.send(frame, now)
        self.counters.record_message(self.session.send_direction, wire, payload_bits(frame),
                                     round_number=msg.round_number, type_name=msg.NAME)

    def tick(self, now: float) -> None:
        """Drive the retransmission timer (LinkFailed when the peer is gone)."""
        self.arq.tick(now)

    def output(self) -> bytes:
        """Bytes to write now; retransmissions and control bytes are counted as other."""
        out = self.arq.output()
        other = self.arq.stats["bytes_other"]
        self.counters.record_other(self.session.send_direction, other - self._other_out)
        self._other_out = other
        return out

    def feed(self, data, now: float) -> list[Message]:
        """Messages delivered by the received bytes."""
        before = self.arq.pending
        pairs = self.arq.feed_sized(data, now)
        return self._accept(pairs, len(data), self.arq.pending - before)
