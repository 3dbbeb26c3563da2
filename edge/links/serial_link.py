"""The serial transport's pieces shared by the agent and the coordinator.

On a serial line each session frame travels as one or more fragments, each
fragment one ARQ DATA packet (go-back-N, COBS + CRC-32, see
edge/protocol/arq.py). Handshake frames go on the line's clear ARQ channel,
session frames on its sealed one, whose packets carry a tag under the
session's ARQ keys (edge/protocol/arqline.py); each channel has its own
reassembly, and a frame that arrives on the wrong channel is dropped:

    ARQ payload = flags u8 | up to `fragment` bytes of the session frame
    flags: bit 0 = first fragment of a frame, bit 1 = last fragment

Why fragments: a lost or corrupted byte costs the retransmission of its
packet. With whole 16 KiB frames, a noisy line (1 % of bytes hit) would never
deliver a Sync (0.99^16000 ~ 0), and one retransmission takes 17 s at 9600
baud; with 128-byte fragments a hit costs ~0.1 s at 9600 baud and every
packet gets through in a few tries. The flags make reassembly robust: a first
fragment discards any half-built frame (a peer that restarted mid-frame), a
fragment without a start is dropped, and a frame longer than the session's
maximum is dropped and counted. The session's HMAC above catches anything
else.

`SerialEndpoint` is an ArqEndpoint that fragments what it sends and
reassembles what it receives. It keeps at most `window` fragments inside each
ARQ channel and the rest in its own backlog, so the ARQ's retransmission timer
starts when a packet is about to go out rather than when a large message was
queued. Accounting follows endpoint.py: a message's frame_bytes are the line
bytes of the first transmission of all its fragments; retransmissions, acks,
resets and dropped fragments are other_bytes.

`PortIO` wraps a pyserial port (device path or URL) for non-blocking use, and
`link_timing` derives the retransmission timer from the baud rate.
"""
from __future__ import annotations

import io
import math
import os
import select
import time
from collections import deque

from fedzo.edge.protocol import ArqEndpoint
from fedzo.edge.protocol.arq import ARQ_HEADER_BYTES, ARQ_TAG_BYTES
from fedzo.edge.protocol.arqline import ArqLine
from fedzo.edge.protocol.constants import CRC_BYTES, FLAG_HANDSHAKE, FLAG_REFUSAL
from fedzo.edge.protocol.endpoint import payload_bits
from fedzo.edge.protocol.errors import MalformedFrame, OversizedFrame, TruncatedFrame

FIRST, LAST = 0x01, 0x02
FRAGMENT_HEADER_BYTES = 1
DEFAULT_FRAGMENT_BYTES = 128
MIN_FRAGMENT_BYTES, MAX_FRAGMENT_BYTES = 16, 4096
# Line bytes a fragment of a session frame adds to its piece of frame: flags,
# ARQ header, ARQ tag, CRC, and for packets under 254 bytes exactly one COBS
# code byte and the 0x00 (a handshake frame's fragments have no ARQ tag).
FRAGMENT_OVERHEAD_BYTES = FRAGMENT_HEADER_BYTES + ARQ_HEADER_BYTES + ARQ_TAG_BYTES + CRC_BYTES + 2
_FLAGS_AT = 2               # offset of the flags byte in a frame header (header.py)
DEFAULT_WINDOW = 4
DEFAULT_BAUD = 115200
DEFAULT_LINK_TIMEOUT = 30.0
BITS_PER_BYTE = 10          # 8N1: a start bit, 8 data bits, a stop bit
READ_BYTES = 65536


class SerialLinkError(RuntimeError):
    """A serial port cannot be opened or used; the text says which and why."""


def check_baud(baud) -> int:
    """A positive integer baud rate, or ValueError."""
    if isinstance(baud, bool) or not isinstance(baud, int) or not 50 <= baud <= 20_000_000:
        raise ValueError(f"baud rate must be an integer between 50 and 20000000, got {baud!r}")
    return baud


def check_fragment(fragment) -> int:
    """A fragment size in [MIN_FRAGMENT_BYTES, MAX_FRAGMENT_BYTES], or ValueError."""
    if isinstance(fragment, bool) or not isinstance(fragment, int) \
            or not MIN_FRAGMENT_BYTES <= fragment <= MAX_FRAGMENT_BYTES:
        raise ValueError(f"fragment size must be an integer between {MIN_FRAGMENT_BYTES} and "
                         f"{MAX_FRAGMENT_BYTES} bytes, got {fragment!r}")
    return fragment


def wire_seconds(nbytes: int, baud: int) -> float:
    """Time a UART at `baud` (8N1) needs to send nbytes."""
    return nbytes * BITS_PER_BYTE / baud


def link_timing(baud: int, *, window: int = DEFAULT_WINDOW, fragment: int = DEFAULT_FRAGMENT_BYTES,
                link_timeout: float = DEFAULT_LINK_TIMEOUT) -> tuple[float, int]:
    """(rto seconds, max_retries) for an ARQ on a line of `baud`.

    The timer must outlast a full window on the wire and its acknowledgement
    coming back (twice the window's wire time), plus scheduling slack on a
    busy host (0.25 s). max_retries makes the link give up after about
    link_timeout seconds without progress.
    """
    window_seconds = wire_seconds(window * (fragment + FRAGMENT_OVERHEAD_BYTES), baud)
    rto = 0.25 + 2.0 * window_seconds
    return rto, max(3, math.ceil(link_timeout / rto))


def make_arq(baud: int, *, window: int = DEFAULT_WINDOW, fragment: int = DEFAULT_FRAGMENT_BYTES,
             link_timeout: float = DEFAULT_LINK_TIMEOUT) -> ArqLine:
    """An ArqLine (clear and sealed ARQ channels) timed for a line of `baud`."""
    rto, retries = link_timing(baud, window=window, fragment=fragment, link_timeout=link_timeout)
    return ArqLine(window=window, rto=rto, max_retries=retries, max_queue=max(64, window))


def is_handshake_frame(frame) -> bool:
    """True for a frame of the handshake: one sealed under the handshake keys, or the
    Refusal that answers a Hello (no session exists for either): it goes on the clear channel."""
    return len(frame) > _FLAGS_AT and bool(frame[_FLAGS_AT] & (FLAG_HANDSHAKE | FLAG_REFUSAL))


class _Reassembly:
    """A frame being rebuilt from one channel's fragments."""

    __slots__ = ("data", "wire", "discarding")

    def __init__(self):
        self.data = bytearray()
        self.wire = 0              # its fragments' line bytes
        self.discarding = False    # dropping the rest of an oversized frame


class SerialEndpoint(ArqEndpoint):
    """Session + fragmentation + ARQ + counters (see the module docstring)."""

    def __init__(self, session, arq: ArqLine | None = None, *, fragment: int = DEFAULT_FRAGMENT_BYTES):
        super().__init__(session, arq if arq is not None else ArqLine())
        self.fragment = check_fragment(fragment)
        # (ARQ payload, sealed, None or on a frame's last fragment (counters, bits, round, name))
        self._backlog: deque = deque()
        self._sending_wire = 0            # line bytes of the fragments of the frame being handed over
        self._partial = {False: _Reassembly(), True: _Reassembly()}   # per channel (sealed?)

    # -- sending --------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """Everything sent was acknowledged and nothing waits to be written."""
        return not self._backlog and self.arq.idle

    @property
    def backlog(self) -> int:
        """Fragments waiting for room in the ARQ window."""
        return len(self._backlog)

    def send(self, msg, now: float) -> None:
        """Seal msg, cut it into fragments and queue them (LinkFailed if the link failed)."""
        frame = self.session.seal(msg)
        self._key_line()                  # sealing a Welcome established the session
        self.send_frame(frame, now, msg.round_number, msg.NAME)

    def _key_line(self) -> None:
        """Once the session has ARQ keys, session frames travel sealed under them."""
        if self.session.arq_keys is not None:
            self.arq.seal(self.session.arq_keys)

    def send_frame(self, frame: bytes, now: float, round_number=None, name: str = "frame",
                   keys=None) -> None:
        """Queue a frame sealed earlier (possibly by a session that has ended).

        keys: the ARQ keys of the session that sealed it, if that is not the
        current session (a Bye for a session that is over, on a fresh line).
        """
        if keys is not None:
            self.arq.seal(keys)
        sealed = not is_handshake_frame(frame)
        step = self.fragment
        pieces = [frame[i:i + step] for i in range(0, len(frame), step)]
        last = len(pieces) - 1
        for i, piece in enumerate(pieces):
            flags = (FIRST if i == 0 else 0) | (LAST if i == last else 0)
            record = (self.counters, payload_bits(frame), round_number, name) if i == last else None
            self._backlog.append((bytes([flags]) + piece, sealed, record))
        self._pump(now)

    def _pump(self, now: float) -> None:
        # Hand fragments to the ARQ only as the window frees, so its timer
        # measures the wait for this packet, not for the whole backlog.
        while self._backlog and self.arq.room(self._backlog[0][1]):
            payload, sealed, record = self._backlog.popleft()
            self._sending_wire += self.arq.send(payload, now, sealed)
            if record is not None:
                counters, bits, round_number, name = record
                counters.record_message(self.session.send_direction, self._sending_wire, bits,
                                        round_number=round_number, type_name=name)
                self._sending_wire = 0

    def rebind(self, session, *, drop_backlog: bool = False) -> None:
        """Go on with another session on the same line (a serial port outlives its sessions).

        Fragments already queued still go out and count for the session that
        sealed them, unless drop_backlog (the peer restarted and cannot use
        them); bytes of a frame cut short that way count as other bytes.
        The line state (ARQ, a half-reassembled frame) is kept, but for
        drop_backlog the sealed ARQ channel goes too: its peer is gone.
        """
        if session.role != self.session.role:
            raise ValueError("a serial endpoint keeps its role")
        if drop_backlog:
            self.peer_started_over()
        self.session = session
        self.counters = session.counters
        self.arq.on_reject = self.counters.reject

    def peer_started_over(self) -> None:
        """The peer began a new handshake: drop what was queued for its old
        session, and the sealed ARQ stream, which it can no longer acknowledge
        (left alone, that stream's retransmissions would end the line after
        link_timeout). Bytes of a frame cut short count as other bytes."""
        if self._sending_wire:
            self.counters.record_other(self.session.send_direction, self._sending_wire)
        self._backlog.clear()
        self._sending_wire = 0
        self.arq.unseal()
        self._partial[True] = _Reassembly()

    def tick(self, now: float) -> None:
        """Drive the retransmission timer (LinkFailed when the peer is gone)."""
        self.arq.tick(now)
        self._pump(now)

    # -- receiving ------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Received line bytes held for a packet or a frame not yet complete."""
        return self.arq.pending + sum(r.wire for r in self._partial.values())

    def feed(self, data, now: float) -> list:
        """Messages completed by the received bytes (bad ones counted and skipped).

        Each frame is opened as soon as it completes, so a Welcome keys the
        line before the sealed packets that follow it in the same read.
        """
        before = self.pending
        messages, accepted = [], 0
        for payload, wire, sealed in self.arq.feed_iter(data, now):
            done = self._reassemble(payload, wire, sealed)
            if done is None:
                continue
            msg = self._open_one(*done)
            if msg is not None:
                messages.append(msg)
                accepted += done[1]
                self._key_line()
        self._pump(now)          # acknowledgements may have opened the window
        self.counters.record_other(self.session.recv_direction,
                                   len(data) - accepted - (self.pending - before))
        return messages

    def _reject(self, exc) -> None:
        self.counters.reject(exc.reason)
        self.errors.append(exc)

    def _drop_partial(self, partial: _Reassembly, exc) -> None:
        self._reject(exc)
        partial.data.clear()
        partial.wire = 0

    def _reassemble(self, payload: bytes, wire: int, sealed: bool):
        """Add one delivered fragment; (frame, line bytes) when it completes one."""
        if not payload or payload[0] & ~(FIRST | LAST):
            self._reject(MalformedFrame("serial fragment without a valid flags byte"))
            return None
        partial = self._partial[sealed]
        flags, piece = payload[0], payload[1:]
        if flags & FIRST:
            if partial.wire:
                self._drop_partial(partial, TruncatedFrame("a frame was cut off by the start of the next one"))
            partial.discarding = False
        elif partial.discarding:
            return None
        elif not partial.wire:
            self._reject(TruncatedFrame("serial fragment of a frame whose start was not received"))
            return None
        if len(partial.data) + len(piece) > self.session.max_frame:
            self._drop_partial(partial, OversizedFrame(f"reassembled frame exceeds {self.session.max_frame} bytes"))
            partial.discarding = not flags & LAST
            return None
        partial.data += piece
        partial.wire += wire
        if not flags & LAST:
            return None
        frame, frame_wire = bytes(partial.data), partial.wire
        partial.data.clear()
        partial.wire = 0
        if is_handshake_frame(frame) == sealed:
            # Session frames travel sealed and handshake frames clear; anything
            # else was put on the line by someone without the session's keys.
            self._reject(MalformedFrame(f"{'handshake' if sealed else 'session'} frame on the "
                                        f"{'sealed' if sealed else 'clear'} ARQ channel"))
            return None
        return frame, frame_wire


class PortIO:
    """A pyserial port used without blocking.

    Ports with a file descriptor (devices, pseudo-terminals) are read and
    written with os.read/os.write on it: pyserial's own non-blocking write
    spins while the output buffer is full. Ports without one (some URL
    handlers) go through pyserial's read/write with zero timeouts.
    """

    def __init__(self, port: str, baud: int):
        import serial  # pyserial; imported here so TCP-only agents never need it
        self.name = port
        self.baud = check_baud(baud)
        try:
            self.serial = serial.serial_for_url(port, baudrate=baud, timeout=0, write_timeout=0)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise SerialLinkError(f"cannot open serial port {port}: {exc}") from exc
        try:
            self.fd = self.serial.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            self.fd = None

    def fileno(self) -> int:
        """The descriptor (for selectors); only for ports that have one."""
        if self.fd is None:
            raise io.UnsupportedOperation(f"{self.name} has no file descriptor")
        return self.fd

    def read(self) -> bytes:
        """Bytes available now (maybe none); SerialLinkError if the port is gone."""
        import serial
        try:
            if self.fd is None:
                return self.serial.read(READ_BYTES)
            return os.read(self.fd, READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return b""
        except (OSError, serial.SerialException) as exc:
            raise SerialLinkError(f"serial port {self.name} failed: {exc}") from exc

    def write(self, data) -> int:
        """Write what the port takes now; the number of bytes taken."""
        import serial
        if not data:
            return 0
        try:
            if self.fd is None:
                n = self.serial.write(data)
                return len(data) if n is None else n
            return os.write(self.fd, data)
        except (BlockingIOError, InterruptedError):
            return 0
        except (OSError, serial.SerialException) as exc:
            raise SerialLinkError(f"serial port {self.name} failed: {exc}") from exc

    def wait(self, timeout: float, want_write: bool = False) -> None:
        """Sleep until the port may be read (or written), at most timeout seconds."""
        timeout = max(0.0, timeout)
        if self.fd is None:
            time.sleep(min(timeout, 0.005))       # nothing to select on: poll
            return
        try:
            select.select([self.fd], [self.fd] if want_write else [], [], timeout)
        except (OSError, ValueError) as exc:
            raise SerialLinkError(f"serial port {self.name} failed: {exc}") from exc

    def close(self) -> None:
        """Close the port (errors ignored: it may already be gone)."""
        try:
            self.serial.close()
        except Exception:   # noqa: BLE001 - closing a vanished device may raise anything
            pass
