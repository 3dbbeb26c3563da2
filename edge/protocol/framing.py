"""Stream framing for TCP: a 4-byte big-endian length prefix before each frame.

    stream = (length u32 BE || frame[length])*

`FrameReader` is incremental: feed it byte pieces of any size (one byte, a
partial prefix, several frames at once) and it returns the frames completed so
far. It buffers at most one frame (<= max_frame bytes) plus 3 prefix bytes.

A declared length above max_frame is rejected the moment its 4 prefix bytes
have arrived, before any of the frame is buffered. A byte stream has no
delimiter to resynchronise on, so after that the reader is unusable: every
later feed raises StreamBroken and the caller must close the connection.
(A length below the minimum frame size is not a framing error: the frame is
delivered and the Session rejects it as truncated, the stream stays in step.)

Also here: `LengthPrefixFraming`, `NoFraming` (in-process queues, one frame per
item), the common shape Endpoint expects of a framing.
"""
from __future__ import annotations

import struct

from .constants import LENGTH_PREFIX_BYTES, MAX_FRAME_BYTES
from .errors import OversizedFrame, StreamBroken, TruncatedFrame

_PREFIX = struct.Struct(">I")


def length_prefixed(frame) -> bytes:
    """The bytes to write on a stream for one frame."""
    if len(frame) > MAX_FRAME_BYTES:
        raise OversizedFrame(f"frame of {len(frame)} bytes exceeds {MAX_FRAME_BYTES}")
    return _PREFIX.pack(len(frame)) + bytes(frame)


class FrameReader:
    """Incremental reader of length-prefixed frames (see the module docstring)."""

    def __init__(self, max_frame: int = MAX_FRAME_BYTES, on_reject=None):
        self.max_frame = max_frame
        self.on_reject = on_reject   # on_reject(exc, nbytes), called before raising
        self._prefix = bytearray()   # 0..3 bytes of a prefix seen so far
        self._frame = bytearray()    # the frame being collected
        self._need = -1              # its declared length, -1 while reading a prefix
        self.broken: OversizedFrame | None = None
        self.bytes_in = 0

    @property
    def pending(self) -> int:
        """Bytes received that are not yet part of a complete frame (prefix included)."""
        if self._need < 0:
            return len(self._prefix)
        return LENGTH_PREFIX_BYTES + len(self._frame)

    def feed(self, data) -> list[bytes]:
        """Frames completed by data; raises OversizedFrame / StreamBroken."""
        return [frame for frame, _ in self.feed_sized(data)]

    def feed_sized(self, data) -> list[tuple[bytes, int]]:
        """Like feed, with each frame's size on the wire (prefix included).

        If a bad length arrives, the OversizedFrame raised carries in its
        `frames` attribute the (frame, size) pairs completed before it in
        this call, so no good frame is lost.
        """
        if self.broken is not None:
            raise StreamBroken(f"the stream is unusable since: {self.broken}")
        view = memoryview(data).cast("B")
        self.bytes_in += len(view)
        out: list[tuple[bytes, int]] = []
        pos, n = 0, len(view)
        while pos < n:
            if self._need < 0:
                take = min(LENGTH_PREFIX_BYTES - len(self._prefix), n - pos)
                self._prefix += view[pos:pos + take]
                pos += take
                if len(self._prefix) < LENGTH_PREFIX_BYTES:
                    break
                (length,) = _PREFIX.unpack(self._prefix)
                self._prefix.clear()
                if length > self.max_frame:
                    exc = OversizedFrame(f"declared frame length {length} exceeds the maximum "
                                         f"of {self.max_frame}; the stream cannot be resynchronised")
                    exc.frames = out
                    self.broken = exc
                    if self.on_reject is not None:
                        self.on_reject(exc, n - pos + LENGTH_PREFIX_BYTES)
                    raise exc
                self._need = length
            take = min(self._need - len(self._frame), n - pos)
            self._frame += view[pos:pos + take]
            pos += take
            if len(self._frame) == self._need:
                out.append((bytes(self._frame), LENGTH_PREFIX_BYTES + self._need))
                self._frame.clear()
                self._need = -1
        return out

    def close(self) -> None:
        """At end of stream: raise TruncatedFrame if a frame was cut off."""
        if self.pending:
            raise TruncatedFrame(f"stream ended inside a frame ({self.pending} bytes pending)")


class LengthPrefixFraming:
    """TCP framing: wrap() adds the prefix, reader() makes a FrameReader."""

    name = "tcp"

    def __init__(self, max_frame: int = MAX_FRAME_BYTES):
        self.max_frame = max_frame

    def wrap(self, frame) -> bytes:
        """Bytes to write for one frame."""
        return length_prefixed(frame)

    def reader(self, on_reject=None) -> FrameReader:
        """A fresh incremental reader."""
        return FrameReader(self.max_frame, on_reject)


class _PassReader:
    """Reader for transports that already carry whole frames (queues)."""

    pending = 0

    def __init__(self, on_reject=None):
        self.bytes_in = 0

    def feed(self, frame) -> list[bytes]:
        return [bytes(frame)]

    def feed_sized(self, frame) -> list[tuple[bytes, int]]:
        self.bytes_in += len(frame)
        return [(bytes(frame), len(frame))]

    def close(self) -> None:
        pass


class NoFraming:
    """In-process framing: each queue item is exactly one frame."""

    name = "inproc"

    def wrap(self, frame) -> bytes:
        """The frame itself."""
        return bytes(frame)

    def reader(self, on_reject=None) -> _PassReader:
        """A reader that returns each fed item as one frame."""
        return _PassReader(on_reject)
