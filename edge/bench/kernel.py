"""`fedzo bench kernel`: the C kernel against the NumPy fallback and memcpy.

For each size d and operation, params_per_s is d divided by the best time of
one call. The memcpy reference copies the bytes the operation streams over:
the packed sign words (d/8 bytes) for `generate`, the int16 store slice
(2d bytes) for perturb, restore and update. Ratios are taken in the same run.
"""
import numpy as np

from fedzo.edge import kernel
from fedzo.edge.bench.timing import best_seconds, ratio

DEFAULT_SIZES = (5_123, 1_000_000)
HUGE_SIZE = 100_000_000
OPS = ("generate", "perturb", "restore", "update")
SEED, STREAM, ROUND, STEP = 0x5EED, 3, 17, 41


def _op_call(op, impl, theta, saved, n_words):
    """A zero-argument callable running `op` once on the given buffers."""
    if op == "generate":
        return lambda: kernel.stream_words(SEED, STREAM, ROUND, 0, n_words, impl=impl)
    if op == "perturb":
        return lambda: kernel.perturb(theta, SEED, STREAM, ROUND, STEP, saved, impl=impl)
    if op == "restore":
        return lambda: kernel.restore(theta, saved, impl=impl)
    return lambda: kernel.update(theta, SEED, STREAM, ROUND, STEP, impl=impl)


def measure(d: int, min_seconds=0.05) -> list:
    """One record per operation for parameter count d."""
    impls = kernel.implementations()
    theta = np.random.default_rng(0).integers(-20000, 20000, d).astype(np.int16)
    saved = theta.copy()
    n_words = -(-d // 64)
    words_src, words_dst = np.ones(n_words, np.uint64), np.empty(n_words, np.uint64)
    store_dst = np.empty_like(theta)
    memcpy = {
        "generate": best_seconds(lambda: np.copyto(words_dst, words_src), min_seconds),
        "store": best_seconds(lambda: np.copyto(store_dst, theta), min_seconds),
    }
    records = []
    for op in OPS:
        rates = {}
        for name in ("c", "numpy"):
            if name in impls:
                rates[name] = d / best_seconds(_op_call(op, impls[name], theta, saved, n_words), min_seconds)
        mem_rate = d / memcpy["generate" if op == "generate" else "store"]
        records.append({
            "op": op, "d": d,
            "c_params_per_s": rates.get("c"),
            "numpy_params_per_s": rates.get("numpy"),
            "memcpy_params_per_s": mem_rate,
            "c_over_numpy": ratio(rates.get("c"), rates.get("numpy")),
            "c_over_memcpy": ratio(rates.get("c"), mem_rate),
        })
    return records


def run(sizes=None, huge=False) -> list:
    """Records for every size (default DEFAULT_SIZES; plus d = 100 000 000 if huge)."""
    sizes = list(DEFAULT_SIZES if sizes is None else sizes) + ([HUGE_SIZE] if huge else [])
    return [record for d in sizes for record in measure(d)]


def format_table(records) -> str:
    """A readable table of the records."""
    def num(x, fmt):
        return "-" if x is None else format(x, fmt)
    lines = [f"kernel backend: {kernel.backend()} ({kernel.backend_reason()})",
             f"{'op':<9}{'d':>12}{'C Mparam/s':>13}{'NumPy':>10}{'memcpy':>10}{'C/NumPy':>9}{'C/memcpy':>10}"]
    for r in records:
        lines.append(
            f"{r['op']:<9}{r['d']:>12,}{num(r['c_params_per_s'] and r['c_params_per_s'] / 1e6, '13.1f')}"
            f"{num(r['numpy_params_per_s'] / 1e6, '10.1f')}{num(r['memcpy_params_per_s'] / 1e6, '10.1f')}"
            f"{num(r['c_over_numpy'], '9.1f')}{num(r['c_over_memcpy'], '10.2f')}")
    return "\n".join(lines)
