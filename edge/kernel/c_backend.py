"""The C kernel (csrc/, built by cffi) behind the same functions as kernel_numpy.

Importing this module fails with ImportError when the extension was not built;
`fedzo.edge.kernel` catches that and falls back to NumPy.

Perturb and update run their whole 64-entry words with saturating SIMD adds
(SSE2, AVX2 chosen at run time, NEON) or with the portable C loop; every path
is bit-identical (tests/edge/kernel). FEDZO_KERNEL_SIMD chooses: unset or "1"
for the fastest this CPU has, "0" or "portable" for the portable C, or the name
of one instruction set ("sse2", "avx2", "neon"). `variant(isa)` gives the same
functions on a named path, for tests and benches.
"""
import os
import types

import numpy as np

from fedzo.edge.kernel._kernel_c import (  # ImportError when the build was skipped
    ffi,
    lib,
)

_TYPES = {
    np.dtype(np.int16): ("int16_t[]", lib.fz_signed_add_i16, lib.fz_restore_i16,
                         lib.fz_quantize_i16, lib.fz_dequantize_i16),
    np.dtype(np.int32): ("int32_t[]", lib.fz_signed_add_i32, lib.fz_restore_i32,
                         lib.fz_quantize_i32, lib.fz_dequantize_i32),
}

ISAS = {"portable": lib.FZ_ISA_PORTABLE, "sse2": lib.FZ_ISA_SSE2, "avx2": lib.FZ_ISA_AVX2,
        "neon": lib.FZ_ISA_NEON}
SIMD_ENV = "FEDZO_KERNEL_SIMD"


def available_isas() -> list:
    """The paths this build and this CPU can run, portable first."""
    return [name for name, code in ISAS.items() if lib.fz_isa_available(code)]


def _choose_isa(value):
    """The path FEDZO_KERNEL_SIMD asks for: (name, code); ValueError for one this machine cannot run."""
    value = (value or "").strip().lower()
    if value in ("", "1"):
        code = lib.fz_isa_best()
        return next(name for name, c in ISAS.items() if c == code), code
    name = "portable" if value == "0" else value
    if name not in ISAS:
        raise ValueError(f"{SIMD_ENV} must be 0, 1 or one of {', '.join(ISAS)}, not {value!r}")
    if name not in available_isas():
        raise ValueError(f"{SIMD_ENV}={value}: this build or CPU has no {name} "
                         f"(available: {', '.join(available_isas())})")
    return name, ISAS[name]


ISA, _ISA_CODE = _choose_isa(os.environ.get(SIMD_ENV))


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


def perturb(theta, seed, stream, round_, bit_offset, delta, saved, *, _isa=None):
    """Copy theta into `saved` (if given), then add +/-delta per sign bit."""
    ctype, fn = _TYPES[theta.dtype][0], _TYPES[theta.dtype][1]
    t = _out(ctype, theta)
    saved_ptr = ffi.NULL if saved is None else _out(ctype, saved)
    return int(fn(t, len(t), seed, stream, round_, bit_offset, delta, saved_ptr,
                  _ISA_CODE if _isa is None else _isa))


def restore(theta, saved):
    """Put back the values `perturb` saved (a memcpy: nothing to vectorise by hand)."""
    ctype, fn = _TYPES[theta.dtype][0], _TYPES[theta.dtype][2]
    t = _out(ctype, theta)
    fn(t, len(t), _in(ctype, saved))


def update(theta, seed, stream, round_, bit_offset, delta, *, _isa=None):
    """Add +/-delta per sign bit, saturating (the policy update)."""
    return perturb(theta, seed, stream, round_, bit_offset, delta, None, _isa=_isa)


def variant(isa):
    """This module's functions with perturb and update on path `isa` (a name from available_isas())."""
    if isa not in available_isas():
        raise ValueError(f"no {isa} path here (available: {', '.join(available_isas())})")
    code = ISAS[isa]
    return types.SimpleNamespace(
        ISA=isa, stream_words=stream_words, restore=restore, quantize=quantize, dequantize=dequantize,
        perturb=lambda *args: perturb(*args, _isa=code),
        update=lambda *args: update(*args, _isa=code))


def quantize(x, frac_bits, out):
    """out = saturate(rint(x * 2^frac_bits)); returns the saturation count."""
    ctype, fn = _TYPES[out.dtype][0], _TYPES[out.dtype][3]
    q = _out(ctype, out)
    return int(fn(_in("float[]", x), len(q), frac_bits, q))


def dequantize(q, frac_bits, out):
    """out = float32(q) * 2^-frac_bits."""
    ctype, fn = _TYPES[q.dtype][0], _TYPES[q.dtype][4]
    x = _out("float[]", out)
    fn(_in(ctype, q), len(x), frac_bits, x)
