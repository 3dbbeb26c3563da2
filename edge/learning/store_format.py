"""The fixed-point store's formats, in one table, and the theta hash (DESIGN.md §5 and §6).

Every module that needs to know "int16 or int32" asks this table: the kernel
(which arrays it accepts), the store, the run config, and the protocol (the
Sync dtype code and the little-endian wire layout). It imports only hashlib
and NumPy, so the protocol can use it without loading the kernel.
"""
import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StoreFormat:
    """One storage type of theta: its name, wire code and little-endian layout."""

    name: str
    code: int            # carried in Sync and in the theta hash
    wire: np.dtype       # little-endian, as on the wire and in the hash

    @property
    def itemsize(self) -> int:
        return self.wire.itemsize


STORE_FORMATS = {
    "int16": StoreFormat("int16", 1, np.dtype("<i2")),
    "int32": StoreFormat("int32", 2, np.dtype("<i4")),
}
FORMAT_BY_CODE = {f.code: f for f in STORE_FORMATS.values()}
STORE_DTYPE_NAMES = tuple(STORE_FORMATS)                       # config choices
STORE_DTYPES = tuple(np.dtype(name) for name in STORE_FORMATS)  # native-order arrays

HASH_BYTES = 8   # theta hash length, carried in Join, Welcome, Vote, RoundResult and Sync


def store_format(dtype) -> StoreFormat:
    """The format of an int16 or int32 dtype (any byte order); ValueError otherwise."""
    name = np.dtype(dtype).name
    if name not in STORE_FORMATS:
        raise ValueError(f"theta must be int16 or int32, got {np.dtype(dtype)}")
    return STORE_FORMATS[name]


def theta_hash(values: np.ndarray, frac_bits: int) -> bytes:
    """8-byte BLAKE2b of theta's format and little-endian bits: equal on replicas that agree.

    BLAKE2b, digest 8 bytes, person "fedzo-theta-v1", over: dtype code |
    frac_bits | elements as little-endian, so the same integers at another
    scale or width hash differently.
    """
    fmt = store_format(values.dtype)
    h = hashlib.blake2b(digest_size=HASH_BYTES, person=b"fedzo-theta-v1")
    h.update(bytes((fmt.code, frac_bits)))
    # Hash the array's own buffer: no copy of theta (except on big-endian CPUs).
    h.update(np.ascontiguousarray(values, dtype=fmt.wire))
    return h.digest()
