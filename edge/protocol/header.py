"""The 7-byte frame header and the frame layout.

    frame = header (7) || body (0 .. MAX_FRAME_BYTES - 23) || tag (16)
    header = version u8 | type u8 | flags u8 | seq u32   (big-endian)

The body length is implied by the frame length, which the transport gives
(TCP length prefix, serial delimiter).
"""
from __future__ import annotations

import struct
from typing import NamedTuple

from .constants import (
    HEADER_BYTES,
    HEADER_FORMAT,
    MAX_FRAME_BYTES,
    MIN_FRAME_BYTES,
    PROTOCOL_VERSION,
    TAG_BYTES,
)
from .errors import OversizedFrame, TruncatedFrame, WrongVersion

_HEADER = struct.Struct(HEADER_FORMAT)
assert _HEADER.size == HEADER_BYTES


class Header(NamedTuple):
    """A parsed header."""

    version: int
    type: int
    flags: int
    seq: int


def pack_header(type_code: int, flags: int, seq: int, version: int = PROTOCOL_VERSION) -> bytes:
    """The header bytes."""
    return _HEADER.pack(version, type_code, flags, seq)


def split_frame(frame, max_frame: int = MAX_FRAME_BYTES) -> tuple[Header, bytes, bytes, bytes]:
    """Check a frame's size and version; return (header, header bytes, body, tag).

    Nothing here is authenticated yet. Raises TruncatedFrame, OversizedFrame
    or WrongVersion.
    """
    n = len(frame)
    if n < MIN_FRAME_BYTES:
        raise TruncatedFrame(f"frame of {n} bytes is shorter than header + tag ({MIN_FRAME_BYTES})")
    if n > max_frame:
        raise OversizedFrame(f"frame of {n} bytes exceeds the maximum of {max_frame}")
    frame = bytes(frame)
    header = Header(*_HEADER.unpack_from(frame))
    if header.version != PROTOCOL_VERSION:
        raise WrongVersion(f"frame has protocol version {header.version}, "
                           f"this side speaks {PROTOCOL_VERSION}")
    return header, frame[:HEADER_BYTES], frame[HEADER_BYTES:n - TAG_BYTES], frame[n - TAG_BYTES:]


def peek_header(frame) -> Header:
    """The header of a frame, unauthenticated (for routing and logs only)."""
    if len(frame) < HEADER_BYTES:
        raise TruncatedFrame(f"{len(frame)} bytes cannot hold a {HEADER_BYTES}-byte header")
    return Header(*_HEADER.unpack_from(bytes(frame[:HEADER_BYTES])))


def frame_size(body_bytes: int) -> int:
    """Size of a message frame with a body of body_bytes bytes."""
    return HEADER_BYTES + body_bytes + TAG_BYTES
