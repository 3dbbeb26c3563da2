"""The C kernel (csrc/, built by cffi) behind the same functions as kernel_numpy.

Importing this module fails with ImportError when the extension was not built;
`fedzo.edge.kernel` catches that and falls back to NumPy.
"""
import numpy as np

from fedzo.edge.kernel._kernel_c import (  # ImportError when the build was skipped
    ffi,
    lib,
)

_TYPES = {
    np.dtype(np.int16): ("int16_t[]", lib.fz_perturb_i16, lib.fz_restore_i16,
                         lib.fz_update_i16, lib.fz_quantize_i16, lib.fz_dequantize_i16),
    np.dtype(np.int32): ("int32_t[]", lib.fz_perturb_i32, lib.fz_restore_i32,
                         lib.fz_update_i32, lib.fz_quantize_i32, lib.fz_dequantize_i32),
}


# from_buffer rather than a cast of array.ctypes.data: cffi takes the array's
# buffer (refusing a non-contiguous one, and a read-only one for outputs), sizes
# the C array from it, and holds the array while the cdata lives. It is also
# cheaper per call than building array.ctypes. Element counts passed to C are
# the length of the buffer the function writes, so it cannot write past it
# (fedzo.edge.kernel checks that the inputs are as long).

def _in(ctype, array):
    """A C array over an input array's memory."""
    return ffi.from_buffer(ctype, array)


def _out(ctype, array):
    """A C array over an array the kernel writes; ValueError if it is read-only."""
    return ffi.from_buffer(ctype, array, require_writable=True)


def stream_words(seed, stream, round_, first_word, n_words):
    """uint64 words [first_word, first_word + n_words) of the stream."""
    out = np.empty(n_words, dtype=np.uint64)
    words = _out("uint64_t[]", out)
    lib.fz_stream_words(seed, stream, round_, first_word, len(words), words)
    return out


def perturb(theta, seed, stream, round_, bit_offset, delta, saved):
    """Copy theta into `saved` (if given), then add +/-delta per sign bit."""
    ctype, fn = _TYPES[theta.dtype][0], _TYPES[theta.dtype][1]
    t = _out(ctype, theta)
    saved_ptr = ffi.NULL if saved is None else _out(ctype, saved)
    return int(fn(t, len(t), seed, stream, round_, bit_offset, delta, saved_ptr))


def restore(theta, saved):
    """Put back the values `perturb` saved."""
    ctype, fn = _TYPES[theta.dtype][0], _TYPES[theta.dtype][2]
    t = _out(ctype, theta)
    fn(t, len(t), _in(ctype, saved))


def update(theta, seed, stream, round_, bit_offset, delta):
    """Add +/-delta per sign bit, saturating (the policy update)."""
    ctype, fn = _TYPES[theta.dtype][0], _TYPES[theta.dtype][3]
    t = _out(ctype, theta)
    return int(fn(t, len(t), seed, stream, round_, bit_offset, delta))


def quantize(x, frac_bits, out):
    """out = saturate(rint(x * 2^frac_bits)); returns the saturation count."""
    ctype, fn = _TYPES[out.dtype][0], _TYPES[out.dtype][4]
    q = _out(ctype, out)
    return int(fn(_in("float[]", x), len(q), frac_bits, q))


def dequantize(q, frac_bits, out):
    """out = float32(q) * 2^-frac_bits."""
    ctype, fn = _TYPES[q.dtype][0], _TYPES[q.dtype][5]
    x = _out("float[]", out)
    fn(_in(ctype, q), len(x), frac_bits, x)
