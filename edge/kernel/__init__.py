"""The Python face of fedzo's kernel: every other module calls these functions.

Two implementations stand behind it, bit-identical by test:

- "c": csrc/ compiled by cffi at install time (`fedzo.edge.kernel._kernel_c`);
- "numpy": `fedzo.edge.kernel.numpy_backend`, used when the C extension was not built or
  when the environment sets FEDZO_KERNEL=numpy. Its perturb and update use
  saturating SIMD adds (SSE2, AVX2 chosen at run time, NEON) unless
  FEDZO_KERNEL_SIMD=0 selects the portable C loop; every path gives the same
  bits (`simd_variants()` lists the paths this machine has).

`backend()` names the active one and `backend_reason()` says why; when the
install-time build failed, the reason it recorded (`build_failure()`) is part of
that, and `fallback_warning()` is the line to show a person. The functions
here validate their arguments once, so both implementations can trust them.

Slices of the parameter store are passed as 1-D C-contiguous int16 or int32
arrays (views into the store are fine). Element j of a slice takes its sign
from bit (bit_offset + j) of the stream (seed, stream, round) of DESIGN.md §4.
"""
import importlib
import os
from pathlib import Path

import numpy as np

from fedzo.edge.kernel import numpy_backend as kernel_numpy
from fedzo.edge.learning.store_format import STORE_DTYPES

U64_MAX = (1 << 64) - 1
# A step larger than this would overflow the C kernel's int32 delta.
MAX_DELTA = (1 << 31) - 1


# A failed install-time build writes its reason here (csrc/build_kernel.py,
# FAILURE_RECORD); a successful one removes it.
BUILD_FAILURE_FILE = Path(__file__).with_name("BUILD_FAILED.txt")
FORCED_NUMPY = "forced by FEDZO_KERNEL=numpy"


def build_failure():
    """Why the C kernel failed to build at install time, on one line; None if no failure was recorded."""
    try:
        text = BUILD_FAILURE_FILE.read_text(errors="replace")
    except OSError:
        return None
    return "; ".join(line.strip() for line in text.splitlines() if line.strip()) or None


def _load():
    """Choose the implementation: (module, name, reason)."""
    forced = os.environ.get("FEDZO_KERNEL", "").strip().lower()
    if forced not in ("", "c", "numpy"):
        raise ValueError(f"FEDZO_KERNEL must be 'c' or 'numpy', not {forced!r}")
    failure = build_failure()
    failed = None if failure is None else f"the C kernel failed to build: {failure}"
    if forced == "numpy":
        return kernel_numpy, "numpy", FORCED_NUMPY + ("" if failed is None else f"; {failed}")
    try:
        module = importlib.import_module("fedzo.edge.kernel.c_backend")
    except ImportError as exc:
        if forced == "c":
            raise ImportError(f"FEDZO_KERNEL=c but the C kernel is not built: {failed or exc}") from exc
        return kernel_numpy, "numpy", failed or f"C kernel not built or not loadable ({exc})"
    return module, "c", f"C kernel built at install time (csrc/, cffi API mode; SIMD path: {module.ISA})"


_impl, _name, _reason = _load()


def backend() -> str:
    """The active implementation: "c" or "numpy"."""
    return _name


def backend_reason() -> str:
    """Why the active implementation was chosen."""
    return _reason


def fallback_warning():
    """A one-line warning when fedzo runs on the NumPy fallback without being asked to; else None."""
    if _name != "numpy" or _reason.startswith(FORCED_NUMPY):
        return None
    return f"running on the NumPy fallback: {_reason}"


def implementations() -> dict:
    """Every implementation that can be loaded here, by name (tests and benches)."""
    found = {"numpy": kernel_numpy}
    try:
        found["c"] = importlib.import_module("fedzo.edge.kernel.c_backend")
    except ImportError:
        pass
    return found


def simd_variants() -> dict:
    """The C kernel once per path its perturb and update can take here ("c/portable",
    "c/sse2", "c/avx2", "c/neon": those this build and CPU have); empty without it.
    Tests check each against NumPy bit for bit; FEDZO_KERNEL_SIMD picks the one "c" uses."""
    module = implementations().get("c")
    if module is None:
        return {}
    return {f"c/{isa}": module.variant(isa) for isa in module.available_isas()}


# ---- argument checks, shared by both implementations ----

def _u64(name, value):
    value = int(value)
    if not 0 <= value <= U64_MAX:
        raise ValueError(f"{name} must be in [0, 2**64), got {value}")
    return value


def _store_slice(name, array):
    if not isinstance(array, np.ndarray) or array.dtype not in STORE_DTYPES:
        raise TypeError(f"{name} must be an int16 or int32 numpy array")
    if array.ndim != 1 or not array.flags.c_contiguous:
        raise ValueError(f"{name} must be 1-D and C-contiguous")
    if not array.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    return array


def _delta(value):
    value = int(value)
    if abs(value) > MAX_DELTA:
        raise ValueError(f"step must be within +/-{MAX_DELTA} LSB, got {value}")
    return value


def _stream_args(seed, stream, round_, bit_offset, impl):
    return (_u64("seed", seed), _u64("stream", stream), _u64("round", round_),
            _u64("bit_offset", bit_offset), impl or _impl)


# ---- public operations ----

def stream_words(seed, stream, round, first_word, n_words, *, impl=None):
    """uint64 words [first_word, first_word + n_words) of stream (seed, stream, round).

    Word w equals numpy.random.Philox(key=[seed, stream],
    counter=[w // 4, round, 0, 0]).random_raw(4)[w % 4].
    """
    seed, stream, round, first_word, impl = _stream_args(seed, stream, round, first_word, impl)
    n_words = _u64("n_words", n_words)
    if first_word + n_words > U64_MAX:
        raise ValueError("word range runs past 2**64")
    return impl.stream_words(seed, stream, round, first_word, n_words)


def perturb(theta, seed, stream, round, delta, saved=None, *, bit_offset=0, impl=None):
    """theta[j] += (+delta if sign bit else -delta), saturating, in place.

    If `saved` is given (same dtype and length as theta), theta's values are
    copied there first, so `restore(theta, saved)` is exact even where the
    perturbation saturated. Returns the number of saturated entries.
    """
    theta = _store_slice("theta", theta)
    if saved is not None:
        saved = _store_slice("saved", saved)
        if saved.dtype != theta.dtype or saved.size != theta.size:
            raise ValueError("saved must have theta's dtype and length")
    seed, stream, round, bit_offset, impl = _stream_args(seed, stream, round, bit_offset, impl)
    return impl.perturb(theta, seed, stream, round, bit_offset, _delta(delta), saved)


def restore(theta, saved, *, impl=None):
    """Undo `perturb`: theta = saved, bit for bit."""
    theta = _store_slice("theta", theta)
    if saved.dtype != theta.dtype or saved.size != theta.size or not saved.flags.c_contiguous:
        raise ValueError("saved must be a contiguous array of theta's dtype and length")
    (impl or _impl).restore(theta, saved)


def update(theta, seed, stream, round, delta, *, bit_offset=0, impl=None):
    """theta[j] += (+delta if sign bit else -delta), saturating, in place.

    The policy update: delta = alpha_lsb * vote. Returns the saturation count.
    """
    theta = _store_slice("theta", theta)
    seed, stream, round, bit_offset, impl = _stream_args(seed, stream, round, bit_offset, impl)
    return impl.update(theta, seed, stream, round, bit_offset, _delta(delta))


def quantize(x, frac_bits, dtype=np.int16, *, impl=None):
    """Float values to the fixed-point store: (q, n_saturated).

    q = saturate(rint(x * 2**frac_bits)), ties to even; non-finite input is an error.
    """
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(x)):
        raise ValueError("cannot quantise NaN or infinite values")
    out = np.empty(x.size, dtype=dtype)
    if out.dtype not in STORE_DTYPES:
        raise TypeError("the store's dtype must be int16 or int32")
    return out, (impl or _impl).quantize(x, int(frac_bits), out)


def dequantize(q, frac_bits, out=None, *, impl=None):
    """Fixed-point values to float32: q * 2**-frac_bits (into `out` if given)."""
    q = np.ascontiguousarray(q).reshape(-1)
    if q.dtype not in STORE_DTYPES:
        raise TypeError("q must be int16 or int32")
    if out is None:
        out = np.empty(q.size, dtype=np.float32)
    elif out.dtype != np.float32 or out.size != q.size or not out.flags.c_contiguous:
        raise ValueError("out must be a contiguous float32 array of q's length")
    (impl or _impl).dequantize(q, int(frac_bits), out)
    return out
