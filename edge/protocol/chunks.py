"""Arrays on the wire: splitting vectors into chunk messages that fit a
frame, and reassembling them.

The theta hash every chunk carries is `store_format.theta_hash` (re-exported
by the protocol package); every replica must hash theta with it for the
divergence check to work.
"""
from __future__ import annotations

import numpy as np

from fedzo.edge.learning.store_format import STORE_FORMATS, store_format, theta_hash

from .constants import MAX_FRAME_BYTES, MAX_VECTOR_ELEMENTS
from .errors import HashMismatch, MalformedFrame, OversizedFrame
from .header import frame_size
from .messages import ModelDownload, ModelUpload, Sync

_F32 = np.dtype("<f4")


def elements_per_chunk(fixed_body_bytes: int, itemsize: int, max_frame: int) -> int:
    """How many elements fit in one frame of at most max_frame bytes."""
    n = (min(max_frame, MAX_FRAME_BYTES) - frame_size(fixed_body_bytes)) // itemsize
    if n < 1:
        raise OversizedFrame(f"a frame limit of {max_frame} bytes cannot carry one element")
    return n


def _spans(total: int, per_chunk: int):
    if total == 0:
        yield 0, 0
    for start in range(0, total, per_chunk):
        yield start, min(start + per_chunk, total)


def sync_chunks(round_number: int, theta: np.ndarray, frac_bits: int, *,
                max_frame: int = MAX_FRAME_BYTES) -> list[Sync]:
    """The Sync messages carrying theta (int16/int32), each fitting max_frame."""
    fmt = store_format(theta.dtype)
    flat = np.ascontiguousarray(theta, dtype=fmt.wire).reshape(-1)
    digest = theta_hash(flat, frac_bits)
    per = elements_per_chunk(Sync._S.size, flat.itemsize, max_frame)
    return [Sync(round_number, flat.size, a, fmt.name, frac_bits, digest, flat[a:b].tobytes())
            for a, b in _spans(flat.size, per)]


def model_chunks(kind: type, round_number: int, model: np.ndarray, *,
                 max_frame: int = MAX_FRAME_BYTES) -> list:
    """ModelUpload or ModelDownload messages (kind) carrying model as float32."""
    if kind not in (ModelUpload, ModelDownload):
        raise TypeError("kind must be ModelUpload or ModelDownload")
    flat = np.ascontiguousarray(model, dtype=_F32).reshape(-1)
    per = elements_per_chunk(kind._S.size, 4, max_frame)
    return [kind(round_number, flat.size, a, flat[a:b].tobytes()) for a, b in _spans(flat.size, per)]


class VectorAssembler:
    """Rebuilds a vector from in-order chunks (Sync, ModelUpload or ModelDownload).

    expected_total: the element count the receiver expects (d); chunks
    claiming another are rejected before anything is allocated. A chunk at
    offset 0 starts a new vector (dropping a half-built one); any other chunk
    must continue the current vector exactly. add() returns the complete
    vector (a new NumPy array, native byte order) when the last chunk
    arrives; for Sync it first checks the theta hash (HashMismatch).
    """

    def __init__(self, expected_total: int | None = None,
                 max_elements: int = MAX_VECTOR_ELEMENTS):
        self.expected_total = expected_total
        self.max_elements = max_elements
        self._key = None
        self._buf: np.ndarray | None = None
        self._filled = 0

    @property
    def in_progress(self) -> bool:
        """A vector is partly received."""
        return self._buf is not None

    def _key_of(self, chunk):
        if isinstance(chunk, Sync):
            return (Sync, chunk.round, chunk.total, chunk.dtype, chunk.frac_bits, chunk.theta_hash)
        return (type(chunk), chunk.round, chunk.total)

    def add(self, chunk) -> np.ndarray | None:
        """Take one chunk; the whole vector when complete, else None."""
        key = self._key_of(chunk)
        if chunk.offset == 0:
            if self.expected_total is not None and chunk.total != self.expected_total:
                raise MalformedFrame(f"{chunk.NAME} of {chunk.total} elements, expected "
                                     f"{self.expected_total}")
            if chunk.total > self.max_elements:
                raise OversizedFrame(f"{chunk.NAME} of {chunk.total} elements exceeds "
                                     f"{self.max_elements}")
            dtype = STORE_FORMATS[chunk.dtype].wire if isinstance(chunk, Sync) else _F32
            self._key, self._filled = key, 0
            self._buf = np.empty(chunk.total, dtype=dtype.newbyteorder("="))
        elif key != self._key or chunk.offset != self._filled:
            raise MalformedFrame(f"{chunk.NAME} chunk at offset {chunk.offset} does not continue "
                                 f"the vector being received ({self._filled} elements so far)")
        values = np.frombuffer(chunk.data, dtype=self._buf.dtype.newbyteorder("<"))
        self._buf[chunk.offset:chunk.offset + values.size] = values
        self._filled += values.size
        if self._filled < chunk.total:
            return None
        vector, self._buf, self._key = self._buf, None, None
        if isinstance(chunk, Sync) and theta_hash(vector, chunk.frac_bits) != chunk.theta_hash:
            raise HashMismatch(f"synced theta of {vector.size} elements does not match its hash")
        return vector
