"""Reliable, ordered delivery of packets over a lossy serial line.

A go-back-N ARQ with cumulative acknowledgements; window=1 makes it
stop-and-wait. It is transport-independent and clock-free: the caller feeds
received bytes (`feed(data, now)`), sends payloads (`send(payload, now)`),
calls `tick(now)` regularly for the retransmission timer, and writes what
`output()` returns. Packets go through serial framing (COBS + CRC-32), so a
corrupted packet is dropped by its CRC and recovered by retransmission; the
session's HMAC above catches anything the CRC misses.

Packet = kind u8 | epoch u16 | seq u16 (big-endian) [| payload]

    DATA  (1): seq of this packet, then the payload
    ACK   (2): the sender's epoch it answers, seq = next expected (cumulative)
    RESET (3): "I do not know your stream (epoch)": the sender renumbers its
               unacknowledged packets from 0 under a fresh epoch

Each sender picks a random epoch and numbers packets from 0 (mod 2^16). A
receiver adopts a new epoch only at seq 0; a DATA packet of an unknown epoch
with another seq (the receiver restarted, or missed seq 0) gets a RESET, and
an epoch once refused is never adopted (a RESET may reach the sender after
the receiver saw seq 0, and the sender then resends under a new epoch).
Renumbering under a new epoch means a late packet of the old numbering can
never be taken for a new one. The line is assumed not to reorder packets (a
serial cable does not). Duplicates and out-of-order packets are dropped
and answered with the current ACK.

A packet counts as a duplicate only if its payload matches one already
delivered under that seq (a digest of the last RECENT_MEMORY seqs is kept).
A packet with a recent seq but other content is a conflicting copy: one of
the two was injected (a forged DATA packet with a valid CRC and the next
seq), and the receiver cannot tell which, so it delivers this one too
(counted in stats["conflicts"]) and lets the session's tag decide. Before,
the genuine packet was dropped as a "duplicate" and never sent again, so
one forged packet could make a vote vanish. At most CONFLICT_COPIES are
delivered per seq.

Sealed links (issue 11): an ArqLink made with keys=(send key, receive key)
seals every packet it writes and refuses every packet it reads that is not
sealed under the peer's key. A sealed packet sets SEALED in its kind byte
and ends in an ARQ_TAG_BYTES tag:

    tag = HMAC-SHA256(key, kind | epoch | seq || ext i64 || payload)[:6]

where ext is the packet's sequence number counted without wrapping in its
numbering (DATA: its own; ACK: the next expected; RESET: 0). ext is not
sent: both ends know it (a DATA's from the receiver's next expected, an
ACK's from the sender's base), so a packet recorded before seq wrapped
around fails its tag when replayed after. A packet whose tag is missing or
wrong is dropped and counted (stats["forged"]) before it touches any state:
a forged ACK cannot make the sender forget a packet, a forged RESET cannot
renumber the stream, a forged DATA is neither delivered nor acknowledged.
ACK and RESET packets of another numbering are ignored as before. A clear
link counts a sealed packet it cannot check as "unkeyed" and drops it.
Which packets are sealed, and from when, is arqline.py's business.
"""
from __future__ import annotations

import hashlib
import hmac
import random
import struct
from collections import OrderedDict, deque

from .errors import LinkFailed
from .serialframe import MAX_PACKET_BYTES, PACKET_HEADROOM, SerialReader, serial_encode

DATA, ACK, RESET = 1, 2, 3
SEALED = 0x80            # kind bit: the packet ends in a tag
_HDR = struct.Struct(">BHH")
ARQ_HEADER_BYTES = _HDR.size
# 48 bits: a forgery can only be tried on the line, one packet a guess (docs/DECISIONS.md).
ARQ_TAG_BYTES = 6
assert ARQ_HEADER_BYTES + ARQ_TAG_BYTES <= PACKET_HEADROOM
SEQ_MOD = 1 << 16
MAX_WINDOW = 1024
_REFUSED_MEMORY = 64     # refused epochs remembered (of 65536)
RECENT_MEMORY = 64       # delivered seqs whose payload digests are kept (to tell duplicates from conflicts)
CONFLICT_COPIES = 8      # payloads delivered under one seq at most (the first and the conflicting ones)
MAX_PAYLOAD_BYTES = MAX_PACKET_BYTES - ARQ_HEADER_BYTES - ARQ_TAG_BYTES
# What ArqLink.stats counts (the agent's and the coordinator's link figures sum these).
ARQ_STAT_KEYS = ("data_sent", "retransmitted", "acks_sent", "resets_sent", "resets_received",
                 "delivered", "duplicates", "conflicts", "bytes_first", "bytes_other",
                 "forged", "unkeyed")


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=8).digest()


def _signed(delta: int) -> int:
    """A difference of two 16-bit sequence numbers, in [-2^15, 2^15)."""
    return (delta + SEQ_MOD // 2) % SEQ_MOD - SEQ_MOD // 2


class PacketTagger:
    """Tags ARQ packets under one key (one direction of one session)."""

    __slots__ = ("_base",)

    def __init__(self, key: bytes):
        self._base = hmac.new(bytes(key), digestmod=hashlib.sha256)

    def tag(self, head: bytes, ext: int, payload=b"") -> bytes:
        """The tag of a packet: its header, its unwrapped sequence number, its payload."""
        h = self._base.copy()
        h.update(head)
        h.update(ext.to_bytes(8, "big", signed=True))
        h.update(payload)
        return h.digest()[:ARQ_TAG_BYTES]

    def verify(self, head: bytes, ext: int, payload, tag: bytes) -> bool:
        """Constant-time check of a received tag."""
        return hmac.compare_digest(self.tag(head, ext, payload), bytes(tag))


class _Outgoing:
    """One payload waiting for its acknowledgement."""

    __slots__ = ("payload", "wire", "sent")

    def __init__(self, payload: bytes):
        self.payload = payload
        self.wire = b""       # encoded packet under the current numbering
        self.sent = False     # transmitted at least once (later ones are retransmissions)


class PacketReceiver:
    """What reads packets off a line and counts the ones it drops, by reason:
    `rejections`, and on_reject(reason) for each (ArqLink, arqline.ArqLine)."""

    rejections: dict[str, int]
    on_reject = None
    _reader: SerialReader

    def _bump(self, reason: str) -> None:
        self.rejections[reason] = self.rejections.get(reason, 0) + 1
        if self.on_reject is not None:
            self.on_reject(reason)

    def _count_reject(self, exc, nbytes) -> None:
        self._bump(exc.reason)

    @property
    def pending(self) -> int:
        """Received bytes buffered of a packet not yet complete."""
        return self._reader.pending


class ArqLink(PacketReceiver):
    """One end of a reliable serial link (see the module docstring).

    window: packets in flight (1 = stop-and-wait). rto: seconds without
    progress before the window is retransmitted. max_retries: retransmissions
    without progress before tick() raises LinkFailed. max_queue: payloads
    held for sending (sent and not yet acknowledged, or waiting). keys:
    (send key, receive key) for a sealed link, None for a clear one.
    """

    def __init__(self, *, window: int = 4, rto: float = 0.25, max_retries: int = 40,
                 max_queue: int = 64, rng: random.Random | None = None, on_reject=None,
                 keys: tuple[bytes, bytes] | None = None):
        if not 1 <= window <= MAX_WINDOW:
            raise ValueError(f"window must be in [1, {MAX_WINDOW}], got {window}")
        self.window, self.rto, self.max_retries, self.max_queue = window, rto, max_retries, max_queue
        self._rng = rng or random.SystemRandom()
        self._epoch = self._rng.randrange(SEQ_MOD)
        self._queue: deque[_Outgoing] = deque()   # first `_inflight` ones are transmitted
        self._inflight = 0
        self._base_ext = 0             # unwrapped seq of _queue[0]
        self._timer_start: float | None = None
        self._retries = 0
        self._peer_epoch: int | None = None
        self._expected_ext = 0         # unwrapped seq of the next DATA to deliver
        self._ack_due = False
        self._resets_due: set[int] = set()
        self._refused: OrderedDict[int, None] = OrderedDict()   # epochs we sent RESET for
        self._recent: OrderedDict[int, set] = OrderedDict()     # seq -> digests delivered under it
        self._out = bytearray()
        self.failed = False
        self.rejections: dict[str, int] = {}
        self.on_reject = on_reject     # on_reject(reason) for each dropped packet
        self._reader = SerialReader(on_reject=self._count_reject)
        self.stats = dict.fromkeys(ARQ_STAT_KEYS, 0)
        self._tx = self._rx = None
        if keys is not None:
            self._tx, self._rx = PacketTagger(keys[0]), PacketTagger(keys[1])

    @property
    def sealed(self) -> bool:
        """True if this link seals what it sends and takes only sealed packets."""
        return self._tx is not None

    @property
    def _base(self) -> int:
        return self._base_ext % SEQ_MOD

    @property
    def _expected(self) -> int:
        return self._expected_ext % SEQ_MOD

    def _packet(self, kind: int, epoch: int, ext: int, payload: bytes = b"") -> bytes:
        """A packet on the line: clear, or sealed with its tag."""
        if self._tx is None:
            return serial_encode(_HDR.pack(kind, epoch, ext % SEQ_MOD) + payload)
        head = _HDR.pack(kind | SEALED, epoch, ext % SEQ_MOD)
        return serial_encode(head + payload + self._tx.tag(head, ext, payload))

    # -- sending --------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Payloads not yet acknowledged."""
        return len(self._queue)

    @property
    def idle(self) -> bool:
        """Nothing to send or retransmit and nothing written but not taken."""
        return not self._queue and not self._out

    def send(self, payload, now: float) -> int:
        """Queue payload for reliable delivery; return its first transmission's size.

        Raises LinkFailed after a failure and BufferError when max_queue
        payloads are already waiting.
        """
        if self.failed:
            raise LinkFailed("the link failed: no more sending")
        if len(self._queue) >= self.max_queue:
            raise BufferError(f"ARQ send queue is full ({self.max_queue} payloads)")
        payload = bytes(payload)
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
        item = _Outgoing(payload)
        item.wire = self._encode_data(self._base_ext + len(self._queue), payload)
        self._queue.append(item)
        self._pump(now)
        return len(item.wire)

    def _encode_data(self, ext: int, payload: bytes) -> bytes:
        return self._packet(DATA, self._epoch, ext, payload)

    def _transmit(self, item: _Outgoing) -> None:
        self._out += item.wire
        key = "bytes_other" if item.sent else "bytes_first"
        self.stats[key] += len(item.wire)
        self.stats["retransmitted" if item.sent else "data_sent"] += 1
        item.sent = True

    def _pump(self, now: float) -> None:
        while self._inflight < min(self.window, len(self._queue)):
            if self._inflight == 0:
                self._timer_start = now
            self._transmit(self._queue[self._inflight])
            self._inflight += 1

    def tick(self, now: float) -> None:
        """Retransmit the window if it has waited rto; LinkFailed after max_retries."""
        if self.failed or not self._inflight or now - self._timer_start < self.rto:
            return
        self._retries += 1
        if self._retries > self.max_retries:
            self.failed = True
            raise LinkFailed(f"no acknowledgement after {self.max_retries} retransmissions")
        for i in range(self._inflight):
            self._transmit(self._queue[i])
        self._timer_start = now

    def output(self) -> bytes:
        """Bytes to write on the line now (and forget)."""
        self._flush_control()
        out, self._out = bytes(self._out), bytearray()
        return out

    def _control(self, kind: int, epoch: int, ext: int) -> None:
        wire = self._packet(kind, epoch, ext)
        self._out += wire
        self.stats["bytes_other"] += len(wire)

    def _flush_control(self) -> None:
        if self._ack_due:
            self._control(ACK, self._peer_epoch, self._expected_ext)
            self.stats["acks_sent"] += 1
            self._ack_due = False
        for epoch in sorted(self._resets_due):
            self._control(RESET, epoch, 0)
            self.stats["resets_sent"] += 1
        self._resets_due.clear()

    # -- receiving ------------------------------------------------------------

    def feed(self, data, now: float) -> list[bytes]:
        """Payloads delivered (in order, exactly once) by the received bytes."""
        return [payload for payload, _ in self.feed_sized(data, now)]

    def feed_sized(self, data, now: float) -> list[tuple[bytes, int]]:
        """Like feed, with the line size of each delivered payload's packet."""
        out = []
        for packet, wire in self._reader.feed_sized(data):
            payload = self.take(packet, now)
            if payload is not None:
                out.append((payload, wire))
        return out

    def take(self, packet: bytes, now: float) -> bytes | None:
        """Act on one decoded packet; the payload it delivers, or None."""
        if len(packet) < ARQ_HEADER_BYTES:
            self._bump("malformed")
            return None
        kind, epoch, seq = _HDR.unpack_from(packet)
        head, body, tag = packet[:ARQ_HEADER_BYTES], packet[ARQ_HEADER_BYTES:], b""
        if (kind & SEALED) and self._rx is None:
            self._drop("unkeyed")          # cannot be checked here: not ours to act on
            return None
        if self._rx is not None:
            if not kind & SEALED:
                self._drop("forged")       # a clear packet on a sealed link
                return None
            if len(body) < ARQ_TAG_BYTES:
                self._drop("forged")       # too short to hold its tag
                return None
            body, tag = body[:-ARQ_TAG_BYTES], body[-ARQ_TAG_BYTES:]
        kind &= ~SEALED
        if kind == DATA:
            if self._on_data(head, epoch, seq, body, tag):
                self.stats["delivered"] += 1
                return body
        elif kind == ACK and not body:
            self._on_ack(head, epoch, seq, tag, now)
        elif kind == RESET and not body:
            self._on_reset(head, epoch, tag, now)
        else:
            self._bump("malformed")
        return None

    def _drop(self, reason: str) -> None:
        self.stats[reason] += 1
        self._bump(reason)

    def _genuine(self, head: bytes, ext: int, payload, tag: bytes) -> bool:
        """True on a clear link, or if the tag verifies (else counted as forged)."""
        if self._rx is None or self._rx.verify(head, ext, payload, tag):
            return True
        self._drop("forged")
        return False

    def _on_data(self, head: bytes, epoch: int, seq: int, payload: bytes, tag: bytes) -> bool:
        if epoch != self._peer_epoch:
            # A numbering we do not follow: its packets count from 0, so ext = seq.
            if not self._genuine(head, seq, payload, tag):
                return False
            # A refused epoch is never adopted later: the sender may still act on
            # our RESET and resend the same payloads under a new epoch.
            if seq != 0 or epoch in self._refused:
                self._refused[epoch] = None
                if len(self._refused) > _REFUSED_MEMORY:
                    self._refused.popitem(last=False)
                self._resets_due.add(epoch)
                return False
            self._peer_epoch, self._expected_ext = epoch, 0
            self._recent.clear()
        elif not self._genuine(head, self._expected_ext + _signed(seq - self._expected), payload, tag):
            return False
        self._ack_due = True
        if seq != self._expected:
            return self._on_repeat(seq, _digest(payload))
        self._expected_ext += 1
        self._recent[seq] = {_digest(payload)}
        self._recent.move_to_end(seq)
        if len(self._recent) > RECENT_MEMORY:
            self._recent.popitem(last=False)
        return True

    def _on_repeat(self, seq: int, digest: bytes) -> bool:
        """A packet with a seq already passed: a duplicate (dropped), or a conflicting
        copy of a recent one (delivered; see the module docstring)."""
        seen = self._recent.get(seq)
        if seen is None or digest in seen or len(seen) >= CONFLICT_COPIES:
            self.stats["duplicates"] += 1
            return False
        seen.add(digest)
        self.stats["conflicts"] += 1
        return True

    def _on_ack(self, head: bytes, epoch: int, next_seq: int, tag: bytes, now: float) -> None:
        if epoch != self._epoch:
            return                     # an ack of an earlier numbering
        n = _signed(next_seq - self._base)
        if not self._genuine(head, self._base_ext + n, b"", tag):
            return
        if not 1 <= n <= self._inflight:
            return                     # duplicate ack, or nonsense
        for _ in range(n):
            self._queue.popleft()
        self._inflight -= n
        self._base_ext += n
        self._retries = 0
        self._timer_start = now
        self._pump(now)

    def _on_reset(self, head: bytes, epoch: int, tag: bytes, now: float) -> None:
        if epoch != self._epoch or not self._genuine(head, 0, b"", tag):
            return
        self.stats["resets_received"] += 1
        old = self._epoch
        while self._epoch == old:
            self._epoch = self._rng.randrange(SEQ_MOD)
        self._base_ext = 0
        for i, item in enumerate(self._queue):
            item.wire = self._encode_data(i, item.payload)
        self._inflight = 0
        self._pump(now)
