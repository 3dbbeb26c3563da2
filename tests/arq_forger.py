"""A device spliced into a serial cable that forges ARQ packets (issue 11, item 5).

`Forger` is a SerialLine tamper hook (firmware_sim/line.py). It holds back
the bytes a side writes until a packet is complete and reads each DATA
packet as anyone on the wire can (no key): its ARQ header, and in the first
fragment of a frame the frame header's flags, which tell a session frame
(a vote, a round start) from a handshake frame. For the session frames'
packets it does what it was asked: swallow the first transmission of some
and forge the ACK that would make the sender forget them, forge a RESET of
the sender's numbering, forge a DATA packet with the next sequence number.
Forged packets have valid CRCs and come twice: sealed (the SEALED bit and a
random tag) and clear. The attack is the same on a line without sealed
packets (before issue 11's fix), where the clear forgeries did the damage.
"""
import random
import struct
from collections import Counter

from fedzo.edge.protocol.arq import ACK, ARQ_HEADER_BYTES, ARQ_TAG_BYTES, DATA, RESET, SEALED
from fedzo.edge.protocol.constants import FLAG_HANDSHAKE
from fedzo.edge.protocol.errors import ProtocolError
from fedzo.edge.protocol.serialframe import serial_decode, serial_encode

_HDR = struct.Struct(">BHH")
OTHER = {"up": "down", "down": "up"}


def always(direction, seq):
    """An attack predicate that attacks every packet."""
    return True


def forged_packet(kind: int, epoch: int, seq: int, payload: bytes = b"", *, sealed: bool = True,
                  rng=random) -> bytes:
    """Line bytes of an ARQ packet with a valid CRC; a sealed one ends in a random tag."""
    head = _HDR.pack(kind | (SEALED if sealed else 0), epoch, seq % (1 << 16))
    tag = rng.randbytes(ARQ_TAG_BYTES) if sealed else b""
    return serial_encode(head + payload + tag)


_FIRST_FRAGMENT = 0x01
_FRAME_FLAGS_AT = ARQ_HEADER_BYTES + 1 + 2     # fragment flags, then version and type


def session_frame_start(wire: bytes):
    """(epoch, seq) of a DATA packet that starts a session frame, or None for anything else."""
    try:
        packet = serial_decode(wire)
    except ProtocolError:
        return None
    if len(packet) <= _FRAME_FLAGS_AT:
        return None
    kind, epoch, seq = _HDR.unpack_from(packet)
    if kind & ~SEALED != DATA or not packet[ARQ_HEADER_BYTES] & _FIRST_FRAGMENT:
        return None
    return None if packet[_FRAME_FLAGS_AT] & FLAG_HANDSHAKE else (epoch, seq)


def whole_packets(buf: bytearray, data: bytes):
    """Add what a side wrote to `buf` (held back bytes) and take out each whole packet
    (its bytes up to and with its 0x00) that it completes."""
    buf += data
    while (end := buf.find(0)) >= 0:
        wire = bytes(buf[:end + 1])
        del buf[:end + 1]
        yield wire


class Forger:
    """tamper(direction, data) for a SerialLine (see the module docstring).

    Each attack is a predicate of (direction, seq), tried on the first sight
    of each packet: drop, to swallow it and forge its ACK back to the sender;
    reset, to forge a RESET of the sender's numbering back to it; data, to
    forge a DATA packet with the next seq behind it. directions: whose
    packets are attacked ("down": the coordinator's).
    """

    def __init__(self, line, *, drop=None, reset=None, data=None, directions=("up", "down"), seed=0):
        self.line, self.drop, self.reset, self.data = line, drop, reset, data
        self.directions = directions
        self.rng = random.Random(seed)
        self._buffers = {"up": bytearray(), "down": bytearray()}
        self._seen = set()
        self.swallowed = Counter()      # by direction
        self.forged = Counter()         # sealed forgeries by (kind, direction they travelled)

    def __call__(self, direction: str, data: bytes) -> bytes:
        return b"".join(self._packet(direction, wire) for wire in whole_packets(self._buffers[direction], data))

    def _forge(self, kind: int, epoch: int, seq: int, payload: bytes = b"") -> bytes:
        return b"".join(forged_packet(kind, epoch, seq, payload, sealed=sealed, rng=self.rng)
                        for sealed in (True, False))

    def _packet(self, direction: str, wire: bytes) -> bytes:
        """What goes on in place of one packet (forgeries for the other way are injected)."""
        header = session_frame_start(wire) if direction in self.directions else None
        if header is None:
            return wire
        epoch, seq = header
        first = (direction, epoch, seq) not in self._seen
        self._seen.add((direction, epoch, seq))
        if not first:
            return wire
        back = OTHER[direction]
        if self.reset is not None and self.reset(direction, seq):
            self.line.inject(back, self._forge(RESET, epoch, 0))
            self.forged[RESET, back] += 1
        if self.drop is not None and self.drop(direction, seq):
            self.swallowed[direction] += 1
            self.line.inject(back, self._forge(ACK, epoch, seq + 1))     # "received": forget it
            self.forged[ACK, back] += 1
            return b""
        if self.data is not None and self.data(direction, seq):
            self.forged[DATA, direction] += 1
            return wire + self._forge(DATA, epoch, seq + 1, b"\x03" + self.rng.randbytes(20))
        return wire
