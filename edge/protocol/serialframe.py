"""Serial framing: COBS-encoded packets with a CRC-32, delimited by 0x00.

    wire = COBS(packet || CRC-32(packet) as u32 big-endian) || 0x00

The CRC is zlib's CRC-32 over the packet. `SerialReader` is incremental and
never raises on line noise: it splits the byte stream at 0x00 and drops (and
counts) every piece that is not valid COBS ("garbage"), too short to hold a
CRC ("garbage"), fails its CRC ("bad_crc") or is longer than the largest
valid packet ("oversized": the reader stops buffering at once and discards
up to the next 0x00). Empty pieces (0x00 0x00) are idle fill and ignored;
a sender may write a lone 0x00 to flush a receiver's partial garbage.

Loss and duplication are not handled here: that is the ARQ layer (arq.py).
"""
from __future__ import annotations

import zlib
from typing import Callable

from .cobs import cobs_decode, cobs_encode, cobs_max_encoded
from .constants import CRC_BYTES, MAX_FRAME_BYTES
from .errors import BadChecksum, Garbage, OversizedFrame, ProtocolError

DELIMITER = b"\x00"
# Room for the header of a layer below the session (the ARQ header).
PACKET_HEADROOM = 16
MAX_PACKET_BYTES = MAX_FRAME_BYTES + PACKET_HEADROOM


def serial_encode(packet) -> bytes:
    """The bytes to write on the line for one packet."""
    packet = bytes(packet)
    if len(packet) > MAX_PACKET_BYTES:
        raise OversizedFrame(f"packet of {len(packet)} bytes exceeds {MAX_PACKET_BYTES}")
    crc = zlib.crc32(packet).to_bytes(CRC_BYTES, "big")
    return cobs_encode(packet + crc) + DELIMITER


def serial_decode(wire) -> bytes:
    """Decode one encoded packet (with or without its trailing 0x00)."""
    wire = bytes(wire)
    if wire.endswith(DELIMITER):
        wire = wire[:-1]
    raw = cobs_decode(wire)
    if len(raw) < CRC_BYTES:
        raise Garbage(f"packet of {len(raw)} bytes is too short for its CRC")
    packet, crc = raw[:-CRC_BYTES], raw[-CRC_BYTES:]
    if zlib.crc32(packet).to_bytes(CRC_BYTES, "big") != crc:
        raise BadChecksum(f"CRC mismatch on a packet of {len(packet)} bytes")
    return packet


class SerialReader:
    """Incremental decoder of a serial byte stream into CRC-checked packets.

    rejections counts dropped pieces by reason; on_reject(exc, nbytes), if
    given, is called for each with the number of line bytes it took.
    """

    def __init__(self, max_packet: int = MAX_PACKET_BYTES,
                 on_reject: Callable[[ProtocolError, int], None] | None = None):
        self.max_packet = max_packet
        self.max_encoded = cobs_max_encoded(max_packet + CRC_BYTES)
        self.on_reject = on_reject
        self._buf = bytearray()
        self._discarding = 0      # > 0: bytes dropped so far of an oversized piece
        self.rejections: dict[str, int] = {}
        self.bytes_in = 0
        self.idle_bytes = 0       # delimiters of empty pieces

    @property
    def pending(self) -> int:
        """Bytes buffered of a packet not yet delimited."""
        return len(self._buf)

    def _reject(self, exc: ProtocolError, nbytes: int) -> None:
        self.rejections[exc.reason] = self.rejections.get(exc.reason, 0) + 1
        if self.on_reject is not None:
            self.on_reject(exc, nbytes)

    def feed(self, data) -> list[bytes]:
        """Packets completed by data (bad ones are dropped and counted)."""
        return [packet for packet, _ in self.feed_sized(data)]

    def feed_sized(self, data) -> list[tuple[bytes, int]]:
        """Like feed, with each packet's size on the line (delimiter included)."""
        data = bytes(data)
        self.bytes_in += len(data)
        out: list[tuple[bytes, int]] = []
        pos, n = 0, len(data)
        while pos < n:
            z = data.find(0, pos)
            end = n if z < 0 else z
            piece = end - pos
            if self._discarding:
                self._discarding += piece
            elif len(self._buf) + piece > self.max_encoded:
                # Stop buffering now: never hold more than one valid packet.
                self._discarding = len(self._buf) + piece
                self._buf.clear()
            else:
                self._buf += data[pos:end]
            if z < 0:
                break
            pos = z + 1
            if self._discarding:
                self._reject(OversizedFrame(f"serial packet longer than {self.max_encoded} "
                                            "encoded bytes"), self._discarding + 1)
                self._discarding = 0
                continue
            if not self._buf:
                self.idle_bytes += 1
                continue
            encoded = bytes(self._buf)
            self._buf.clear()
            try:
                out.append((serial_decode(encoded), len(encoded) + 1))
            except ProtocolError as exc:
                self._reject(exc, len(encoded) + 1)
        return out


class SerialFraming:
    """Serial framing for an Endpoint: wrap() encodes, reader() decodes."""

    name = "serial"

    def __init__(self, max_packet: int = MAX_PACKET_BYTES):
        self.max_packet = max_packet

    def wrap(self, packet) -> bytes:
        """Bytes to write for one packet."""
        return serial_encode(packet)

    def reader(self, on_reject=None) -> SerialReader:
        """A fresh incremental reader."""
        return SerialReader(self.max_packet, on_reject)
