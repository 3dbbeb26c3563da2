"""Consistent Overhead Byte Stuffing: byte strings without 0x00, so 0x00 can
delimit packets on a serial line.

Encoding: the input is cut at each 0x00 (which is dropped) and into runs of
at most 254 non-zero bytes; each run is written as (run length + 1) followed
by the run. A code below 0xFF stands for "run, then a 0x00" (except at the
very end); 0xFF stands for 254 bytes with no 0x00 after them. Overhead: one
byte per started 254 bytes, at least one.
"""
from __future__ import annotations

from .errors import Garbage

_RUN = 254


def cobs_max_encoded(n: int) -> int:
    """Largest encoding of n bytes (without the delimiter)."""
    return n + n // _RUN + 1


def cobs_encode(data) -> bytes:
    """Encode data; the result contains no 0x00."""
    out = bytearray()
    for piece in bytes(data).split(b"\x00"):
        view = memoryview(piece)
        # A piece of a multiple of 254 bytes ends with an empty run (code 1),
        # which keeps the encoding unique and the decoder simple.
        while len(view) >= _RUN:
            out.append(0xFF)
            out += view[:_RUN]
            view = view[_RUN:]
        out.append(len(view) + 1)
        out += view
    return bytes(out)


def cobs_decode(encoded) -> bytes:
    """Decode one packet (delimiter removed); Garbage if it is not valid COBS."""
    enc = bytes(encoded)
    n = len(enc)
    if n == 0:
        raise Garbage("empty COBS packet")
    out = bytearray()
    i = 0
    while i < n:
        code = enc[i]
        if code == 0:
            raise Garbage(f"0x00 inside a COBS packet at byte {i}")
        end = i + code
        if end > n:
            raise Garbage(f"COBS run of {code - 1} bytes at byte {i} passes the end ({n})")
        run = enc[i + 1:end]
        if b"\x00" in run:
            raise Garbage(f"0x00 inside a COBS run at byte {i}")
        out += run
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)
