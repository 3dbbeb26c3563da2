"""The kernel: stream known answers, C/NumPy bit identity, exact restore, quantisation."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedzo.edge import kernel
from fedzo.edge.kernel import numpy_backend as kernel_numpy

IMPLS = kernel.implementations()
# The C kernel once per path its perturb and update can take on this machine
# (portable C, SSE2, AVX2, NEON): each must agree with NumPy bit for bit.
PATHS = kernel.simd_variants()
ADDERS = {**IMPLS, **PATHS}
needs_c = pytest.mark.skipif("c" not in IMPLS, reason="C kernel not built on this machine")
U64 = st.integers(0, 2**64 - 1)


def philox_words(seed, stream, round_, first_word, n_words):
    """The DESIGN.md §4 definition, word by word, straight from numpy.random.Philox."""
    out = []
    for w in range(first_word, first_word + n_words):
        gen = np.random.Philox(key=np.array([seed, stream], dtype=np.uint64),
                               counter=np.array([w // 4, round_, 0, 0], dtype=np.uint64))
        out.append(gen.random_raw(4)[w % 4])
    return np.array(out, dtype=np.uint64)


def reference_signs(seed, stream, round_, bit_offset, n):
    """+1/-1 per element, materialised (fine in a test, never in the kernel)."""
    first = bit_offset // 64
    last = (bit_offset + n + 63) // 64
    words = philox_words(seed, stream, round_, first, max(last - first, 0))
    bits = np.unpackbits(words.astype("<u8").view(np.uint8), bitorder="little")
    bits = bits[bit_offset - 64 * first:][:n]
    return np.where(bits == 1, 1, -1)


@pytest.mark.parametrize("name", sorted(IMPLS))
@pytest.mark.parametrize("seed,stream,round_,first,n", [
    (0, 0, 0, 0, 9),
    (1, 2, 3, 1, 7),
    (2**64 - 1, 2**64 - 1, 2**64 - 1, 5, 6),
    (12345, 7, 10**6, 2**32 - 2, 5),       # crosses the 2^32 word boundary
    (99, 3, 8, 2**40 + 3, 6),              # far beyond 2^32 words
    (2024, 0, 1, 2**62, 4),
])
def test_stream_matches_numpy_philox(name, seed, stream, round_, first, n):
    got = kernel.stream_words(seed, stream, round_, first, n, impl=IMPLS[name])
    np.testing.assert_array_equal(got, philox_words(seed, stream, round_, first, n))


@pytest.mark.parametrize("name", sorted(IMPLS))
@settings(max_examples=60, deadline=None)
@given(seed=U64, stream=U64, round_=U64, first=st.integers(0, 2**63), n=st.integers(0, 12))
def test_stream_random_keys(name, seed, stream, round_, first, n):
    got = kernel.stream_words(seed, stream, round_, first, n, impl=IMPLS[name])
    np.testing.assert_array_equal(got, philox_words(seed, stream, round_, first, n))


def test_stream_is_contiguous_sequence():
    """Random access agrees with one long sequential draw."""
    long = kernel.stream_words(5, 6, 7, 0, 1000)
    for first in (0, 1, 3, 4, 63, 64, 997):
        np.testing.assert_array_equal(kernel.stream_words(5, 6, 7, first, 1000 - first), long[first:])


# ---- update / perturb: semantics and C vs NumPy identity ----

def _values(dtype, n, rng, near_limits):
    info = np.iinfo(dtype)
    if near_limits:
        # Mix of values at and just inside both limits, and ordinary ones.
        pool = np.array([info.min, info.min + 1, info.min + 2, info.max - 2, info.max - 1,
                         info.max, 0, -1, 1], dtype=np.int64)
        return pool[rng.integers(0, pool.size, n)].astype(dtype)
    return rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)


@pytest.mark.parametrize("dtype", [np.int16, np.int32])
@settings(max_examples=80, deadline=None)
@given(seed=U64, stream=st.integers(0, 2**20), round_=U64, bit_offset=st.integers(0, 700),
       n=st.integers(0, 700), delta=st.integers(-(2**31) + 1, 2**31 - 1) | st.integers(-70000, 70000),
       near=st.booleans(), data_seed=st.integers(0, 2**32 - 1))
def test_update_matches_reference(dtype, seed, stream, round_, bit_offset, n, delta, near, data_seed):
    """Every implementation adds sign*delta with saturation, counting saturations."""
    theta = _values(dtype, n, np.random.default_rng(data_seed), near)
    info = np.iinfo(dtype)
    exact = theta.astype(np.int64) + reference_signs(seed, stream, round_, bit_offset, n) * delta
    expected = np.clip(exact, info.min, info.max).astype(dtype)
    expected_sat = int(np.count_nonzero(exact != expected))
    for name, impl in ADDERS.items():
        got = theta.copy()
        sat = kernel.update(got, seed, stream, round_, delta, bit_offset=bit_offset, impl=impl)
        np.testing.assert_array_equal(got, expected, err_msg=name)
        assert sat == expected_sat, name


@needs_c
@pytest.mark.parametrize("dtype", [np.int16, np.int32])
@settings(max_examples=40, deadline=None)
@given(seed=U64, round_=U64, bit_offset=st.integers(0, 2**40), n=st.integers(0, 5000),
       delta=st.integers(-40000, 40000), data_seed=st.integers(0, 2**32 - 1))
def test_c_and_numpy_identical_on_long_slices(dtype, seed, round_, bit_offset, n, delta, data_seed):
    """Long slices (NumPy works in chunks, C in words) at huge bit offsets."""
    theta = _values(dtype, n, np.random.default_rng(data_seed), near_limits=False)
    a, b = theta.copy(), theta.copy()
    sat_c = kernel.update(a, seed, 3, round_, delta, bit_offset=bit_offset, impl=IMPLS["c"])
    sat_np = kernel.update(b, seed, 3, round_, delta, bit_offset=bit_offset, impl=IMPLS["numpy"])
    np.testing.assert_array_equal(a, b)
    assert sat_c == sat_np


@needs_c
def test_c_and_numpy_identical_across_numpy_chunks():
    """A slice longer than the fallback's chunk, starting mid-word."""
    n = kernel_numpy.CHUNK_WORDS * 64 * 2 + 77
    theta = np.random.default_rng(1).integers(-30000, 30000, n).astype(np.int16)
    a, b = theta.copy(), theta.copy()
    kernel.update(a, 1, 2, 3, -7, bit_offset=37, impl=IMPLS["c"])
    kernel.update(b, 1, 2, 3, -7, bit_offset=37, impl=IMPLS["numpy"])
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(ADDERS))
@pytest.mark.parametrize("dtype", [np.int16, np.int32])
@settings(max_examples=40, deadline=None)
@given(seed=U64, round_=st.integers(0, 2**40), n=st.integers(1, 600), delta=st.integers(1, 40000),
       data_seed=st.integers(0, 2**32 - 1))
def test_restore_is_exact_even_after_saturation(name, dtype, seed, round_, n, delta, data_seed):
    impl = ADDERS[name]
    theta = _values(dtype, n, np.random.default_rng(data_seed), near_limits=True)
    original = theta.copy()
    saved = np.empty_like(theta)
    kernel.perturb(theta, seed, 1, round_, delta, saved, impl=impl)
    kernel.restore(theta, saved, impl=impl)
    np.testing.assert_array_equal(theta, original)


@pytest.mark.parametrize("name", sorted(ADDERS))
def test_perturb_equals_update_and_saturates_at_limits(name):
    impl = ADDERS[name]
    theta = np.array([32767, -32768, 32760, -32760, 0] * 30, dtype=np.int16)
    a, b = theta.copy(), theta.copy()
    saved = np.empty_like(theta)
    sat_p = kernel.perturb(a, 9, 9, 9, 10, saved, impl=impl)
    sat_u = kernel.update(b, 9, 9, 9, 10, impl=impl)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(saved, theta)
    assert sat_p == sat_u > 0
    assert a.max() <= 32767 and a.min() >= -32768


# ---- the SIMD paths: bit identity with the portable C and NumPy ----

def _near_limits(dtype, n, rng):
    """Values within 64 of either limit (most steps saturate some), and a few anywhere."""
    info = np.iinfo(dtype)
    near = rng.integers(0, 64, n, endpoint=True)
    values = np.where(rng.random(n) < 0.5, info.max - near, info.min + near)
    anywhere = rng.integers(info.min, info.max, n, endpoint=True)
    return np.where(rng.random(n) < 0.1, anywhere, values).astype(dtype)


@needs_c
@pytest.mark.parametrize("dtype", [np.int16, np.int32])
@settings(max_examples=60, deadline=None)
@given(seed=U64, round_=U64, bit_offset=st.integers(0, 2**20), n=st.integers(0, 2000),
       misalign=st.integers(0, 3), delta=st.sampled_from([0, 1, -1, 41, -300, 32766, 32767, -32767, 32768,
                                                          2**20, -(2**31 - 1), 2**31 - 1]) | st.integers(-70000, 70000),
       near=st.booleans(), data_seed=st.integers(0, 2**32 - 1))
def test_every_simd_path_is_bit_identical_to_portable_and_numpy(dtype, seed, round_, bit_offset, n, misalign,
                                                                 delta, near, data_seed):
    """Perturb (theta, the saved copy, the count) and update on every path this CPU has, on
    slices that start 0-3 elements past an aligned buffer, with any length (whole words
    and tails), values at the limits and steps up to each type's maximum and beyond it."""
    rng = np.random.default_rng(data_seed)
    theta = (_near_limits if near else lambda d, k, r: _values(d, k, r, False))(dtype, n, rng)
    expected, expected_saved = theta.copy(), np.empty_like(theta)
    expected_sat = kernel_numpy.perturb(expected, seed, 5, round_, bit_offset, delta, expected_saved)
    for name, impl in PATHS.items():
        buffers = np.empty((3, n + misalign), dtype)        # rows are aligned; slices are not
        got, saved, updated = buffers[0, misalign:], buffers[1, misalign:], buffers[2, misalign:]
        got[:] = updated[:] = theta
        sat = kernel.perturb(got, seed, 5, round_, delta, saved, bit_offset=bit_offset, impl=impl)
        sat_update = kernel.update(updated, seed, 5, round_, delta, bit_offset=bit_offset, impl=impl)
        np.testing.assert_array_equal(got, expected, err_msg=name)
        np.testing.assert_array_equal(saved, theta, err_msg=name)
        np.testing.assert_array_equal(updated, expected, err_msg=name)
        assert sat == sat_update == expected_sat, name


@needs_c
@pytest.mark.parametrize("dtype", [np.int16, np.int32])
@pytest.mark.parametrize("start", ["max", "min", "zero"])
def test_saturation_counts_survive_long_slices(dtype, start):
    """The SIMD paths count per lane in narrow vector lanes and sum them every 2048 words:
    slices of three such blocks and a tail, where every entry saturates in one direction
    (about half of them) or none does, give NumPy's count on every path."""
    info = np.iinfo(dtype)
    n = 64 * 2048 * 3 + 64 * 5 + 13
    value = {"max": info.max, "min": info.min, "zero": 0}[start]
    theta = np.full(n, value, dtype)
    delta = int(info.max)
    for step in (delta, -delta):            # a negative step is the positive one with signs flipped
        expected = theta.copy()
        expected_sat = kernel_numpy.update(expected, 3, 1, 4, 0, step)
        if start == "zero":
            assert expected_sat == 0
        else:
            assert 0.49 * n < expected_sat < 0.51 * n
        for name, impl in PATHS.items():
            got = theta.copy()
            assert kernel.update(got, 3, 1, 4, step, impl=impl) == expected_sat, name
            np.testing.assert_array_equal(got, expected, err_msg=name)


@needs_c
def test_the_paths_this_machine_should_have_are_there():
    """The portable path always; on x86-64 SSE2 (part of the architecture) and AVX2
    where the CPU has it; NEON on aarch64."""
    import platform
    names = set(PATHS)
    assert "c/portable" in names
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        assert "c/sse2" in names
        flags = open("/proc/cpuinfo").read().split() if os.path.exists("/proc/cpuinfo") else []
        if "avx2" in flags:
            assert "c/avx2" in names
    if machine in ("aarch64", "arm64"):
        assert "c/neon" in names


def _isa_in_subprocess(value):
    env = dict(os.environ)
    env.pop("FEDZO_KERNEL", None)
    env.pop("FEDZO_KERNEL_SIMD", None)
    if value is not None:
        env["FEDZO_KERNEL_SIMD"] = value
    code = ("import numpy as np; from fedzo.edge import kernel; print(kernel.backend_reason()); "
            "t = np.arange(-500, 500, dtype=np.int16) * 65; print(kernel.update(t, 1, 2, 3, 3000)); "
            "print(t.tobytes().hex())")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


@needs_c
def test_fedzo_kernel_simd_chooses_the_path_and_the_bits_do_not_change():
    best = _isa_in_subprocess(None)
    assert best.returncode == 0, best.stderr
    portable = _isa_in_subprocess("0")
    assert portable.returncode == 0, portable.stderr
    assert portable.stdout.splitlines()[0].endswith("SIMD path: portable)")
    assert best.stdout.splitlines()[1:] == portable.stdout.splitlines()[1:]
    assert int(portable.stdout.splitlines()[1]) > 0           # the check includes saturation
    for name in PATHS:
        named = _isa_in_subprocess(name.split("/")[1])
        assert named.stdout.splitlines()[0].endswith(f"SIMD path: {name.split('/')[1]})"), named.stderr
        assert named.stdout.splitlines()[1:] == portable.stdout.splitlines()[1:]


@needs_c
def test_bad_fedzo_kernel_simd_value_is_a_clear_error():
    result = _isa_in_subprocess("altivec")
    assert result.returncode != 0 and "FEDZO_KERNEL_SIMD must be" in result.stderr
    missing = next(isa for isa in ("neon", "avx2", "sse2") if f"c/{isa}" not in PATHS)
    result = _isa_in_subprocess(missing)
    assert result.returncode != 0 and f"has no {missing}" in result.stderr


@pytest.mark.parametrize("name", sorted(IMPLS))
def test_kernel_signs_are_balanced_and_differ_per_block_and_round(name):
    """The directions the kernel applies (an update by +1 from zero): about as many +1 as -1,
    and another block's stream or another round gives other directions."""
    n = 64 * 400
    signs = []
    for stream, round_ in [(0, 0), (1, 0), (0, 1)]:
        theta = np.zeros(n, np.int32)
        kernel.update(theta, 7, stream, round_, 1, impl=IMPLS[name])
        signs.append(theta)
    for s in signs:
        assert set(np.unique(s)) == {-1, 1}
        assert abs(s.mean()) < 0.03                  # 4.8 standard deviations of a fair coin
    assert 0.4 < (signs[0] != signs[1]).mean() < 0.6
    assert 0.4 < (signs[0] != signs[2]).mean() < 0.6


# ---- quantisation ----

@pytest.mark.parametrize("dtype,frac_bits", [(np.int16, 12), (np.int16, 0), (np.int32, 24)])
@settings(max_examples=40, deadline=None)
@given(data_seed=st.integers(0, 2**32 - 1), n=st.integers(0, 3000))
def test_quantise_round_trip_within_half_step(dtype, frac_bits, data_seed, n):
    rng = np.random.default_rng(data_seed)
    limit = np.iinfo(dtype).max * 2.0 ** -frac_bits
    x = rng.uniform(-limit, limit, n).astype(np.float32)
    for name, impl in IMPLS.items():
        q, sat = kernel.quantize(x, frac_bits, dtype, impl=impl)
        back = kernel.dequantize(q, frac_bits, impl=impl)
        assert sat == 0
        err = np.abs(back.astype(np.float64) - x.astype(np.float64))
        # Half an LSB, plus float32 rounding of the dequantised value itself.
        assert np.all(err <= 0.5 * 2.0 ** -frac_bits + np.abs(x) * 2.0 ** -23), name


@needs_c
@settings(max_examples=40, deadline=None)
@given(data_seed=st.integers(0, 2**32 - 1), frac_bits=st.integers(0, 15))
def test_quantise_c_and_numpy_identical_with_ties_and_saturation(data_seed, frac_bits):
    rng = np.random.default_rng(data_seed)
    step = 2.0 ** -frac_bits
    ties = (rng.integers(-1000, 1000, 200) + 0.5) * step          # exact halves
    wide = rng.normal(0, 40000 * step, 200)                          # some saturate
    x = np.concatenate([ties, wide]).astype(np.float32)
    qc, sc = kernel.quantize(x, frac_bits, np.int16, impl=IMPLS["c"])
    qn, sn = kernel.quantize(x, frac_bits, np.int16, impl=IMPLS["numpy"])
    np.testing.assert_array_equal(qc, qn)
    assert sc == sn
    np.testing.assert_array_equal(kernel.dequantize(qc, frac_bits, impl=IMPLS["c"]),
                                  kernel.dequantize(qc, frac_bits, impl=IMPLS["numpy"]))


def test_quantise_ties_go_to_even_and_non_finite_is_rejected():
    q, _ = kernel.quantize(np.array([0.5, 1.5, 2.5, -0.5, -1.5], np.float32), 0)
    assert q.tolist() == [0, 2, 2, 0, -2]
    with pytest.raises(ValueError, match="NaN"):
        kernel.quantize(np.array([1.0, np.nan], np.float32), 4)


# ---- argument checks and backend choice ----

def test_bad_arguments_are_clear_errors():
    theta = np.zeros(10, np.int16)
    with pytest.raises(ValueError, match="seed"):
        kernel.update(theta, -1, 0, 0, 1)
    with pytest.raises(TypeError, match="int16 or int32"):
        kernel.update(np.zeros(10, np.float32), 1, 0, 0, 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        kernel.update(np.zeros(20, np.int16)[::2], 1, 0, 0, 1)
    with pytest.raises(ValueError, match="step"):
        kernel.update(theta, 1, 0, 0, 2**31)
    with pytest.raises(ValueError, match="saved"):
        kernel.perturb(theta, 1, 0, 0, 1, np.zeros(9, np.int16))


def _backend_in_subprocess(env_value):
    env = dict(os.environ)
    env.pop("FEDZO_KERNEL", None)
    if env_value is not None:
        env["FEDZO_KERNEL"] = env_value
    code = "from fedzo.edge import kernel; print(kernel.backend()); print(kernel.backend_reason())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_fedzo_kernel_numpy_forces_the_fallback():
    result = _backend_in_subprocess("numpy")
    assert result.stdout.splitlines() == ["numpy", "forced by FEDZO_KERNEL=numpy"]


def test_bad_fedzo_kernel_value_is_a_clear_error():
    result = _backend_in_subprocess("fortran")
    assert result.returncode != 0 and "FEDZO_KERNEL must be" in result.stderr


@pytest.mark.skipif(shutil.which(os.environ.get("CC", "cc")) is None and shutil.which("gcc") is None,
                    reason="no C compiler here, so the fallback is expected")
def test_c_kernel_was_built_where_a_compiler_exists():
    """Catches a build that silently produced no extension."""
    result = _backend_in_subprocess(None)
    assert result.stdout.splitlines()[0] == "c", result.stdout + result.stderr


def test_numpy_fallback_memory_is_bounded_by_its_chunk_not_the_slice():
    """The fallback streams in chunks: its temporaries do not grow with the slice."""
    from isolated import peak_allocation
    n = 4_000_000                                  # an int64 copy alone would be 32 MB
    setup = f"""
import numpy as np
from fedzo.edge import kernel
from fedzo.edge.kernel import numpy_backend as kernel_numpy
theta = np.zeros({n}, np.int16)
saved = np.empty_like(theta)
"""
    measured = """
kernel.update(theta, 1, 2, 3, 5, bit_offset=17, impl=kernel_numpy)
kernel.perturb(theta, 1, 2, 4, 5, saved, impl=kernel_numpy)
"""
    peak = peak_allocation(setup, measured)["peak"]
    assert peak < 4 * 2**20, f"{peak} bytes for a {n}-element slice"
