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
    np.dtype(np.int16): ("int16_t *", lib.fz_perturb_i16, lib.fz_restore_i16,
                         lib.fz_update_i16, lib.fz_quantize_i16, lib.fz_dequantize_i16),
    np.dtype(np.int32): ("int32_t *", lib.fz_perturb_i32, lib.fz_restore_i32,
                         lib.fz_update_i32, lib.fz_quantize_i32, lib.fz_dequantize_i32),
}


def _ptr(ctype, array):
    # Arrays are validated as C-contiguous by fedzo.edge.kernel, so the raw address is safe.
    return ffi.cast(ctype, array.ctypes.data)


def stream_words(seed, stream, round_, first_word, n_words):
    """uint64 words [first_word, first_word + n_words) of the stream."""
    out = np.empty(n_words, dtype=np.uint64)
    lib.fz_stream_words(seed, stream, round_, first_word, n_words, _ptr("uint64_t *", out))
    return out


def perturb(theta, seed, stream, round_, bit_offset, delta, saved):
    """Copy theta into `saved` (if given), then add +/-delta per sign bit."""
    ctype, fn = _TYPES[theta.dtype][0], _TYPES[theta.dtype][1]
    saved_ptr = ffi.NULL if saved is None else _ptr(ctype, saved)
    return int(fn(_ptr(ctype, theta), theta.size, seed, stream, round_, bit_offset, delta, saved_ptr))


def restore(theta, saved):
    """Put back the values `perturb` saved."""
    ctype, fn = _TYPES[theta.dtype][0], _TYPES[theta.dtype][2]
    fn(_ptr(ctype, theta), theta.size, _ptr(ctype, saved))


def update(theta, seed, stream, round_, bit_offset, delta):
    """Add +/-delta per sign bit, saturating (the policy update)."""
    ctype, fn = _TYPES[theta.dtype][0], _TYPES[theta.dtype][3]
    return int(fn(_ptr(ctype, theta), theta.size, seed, stream, round_, bit_offset, delta))


def quantize(x, frac_bits, out):
    """out = saturate(rint(x * 2^frac_bits)); returns the saturation count."""
    ctype, fn = _TYPES[out.dtype][0], _TYPES[out.dtype][4]
    return int(fn(_ptr("float *", x), x.size, frac_bits, _ptr(ctype, out)))


def dequantize(q, frac_bits, out):
    """out = float32(q) * 2^-frac_bits."""
    ctype, fn = _TYPES[q.dtype][0], _TYPES[q.dtype][5]
    fn(_ptr(ctype, q), q.size, frac_bits, _ptr("float *", out))
