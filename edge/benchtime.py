"""Timing helpers shared by the benchmarks: best-of-repeats, never in tests."""
import time


def best_seconds(fn, min_seconds=0.05, repeats=5) -> float:
    """Seconds per call of fn(), the best of `repeats` timed batches.

    Each batch runs fn enough times to last about min_seconds, so short
    operations are not lost in timer resolution; the best batch is the least
    disturbed by other work on a shared machine.
    """
    fn()  # warm up (first-touch page faults, lazy imports)
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds / 4 or calls >= 1 << 20:
            break
        calls *= 4
    calls = max(1, int(calls * (min_seconds / max(elapsed, 1e-9))))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def ratio(a, b):
    """a / b, or None when either side is missing."""
    if a is None or b is None or b == 0:
        return None
    return a / b
