"""Timing helpers shared by the benchmarks: best-of-repeats, never in tests."""
import time


def _calls_for(fn, min_seconds) -> int:
    """How many calls of fn() make a batch of about min_seconds (after a warm-up call)."""
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
    return max(1, int(calls * (min_seconds / max(elapsed, 1e-9))))


def best_seconds(fn, min_seconds=0.05, repeats=5) -> float:
    """Seconds per call of fn(), the best of `repeats` timed batches.

    Each batch runs fn enough times to last about min_seconds, so short
    operations are not lost in timer resolution; the best batch is the least
    disturbed by other work on a shared machine.
    """
    return best_seconds_each([fn], min_seconds, repeats)[0]


def best_seconds_each(fns, min_seconds=0.05, repeats=5) -> list:
    """Seconds per call of each of fns, as `best_seconds`, with their batches
    taken in turn (one batch of each, `repeats` times over).

    For figures that are compared as a ratio: interleaved, every function
    meets the same load from other work on the machine, so a busy spell
    cannot favour the one that happened to be timed while it was quiet.
    """
    fns = list(fns)
    calls = [_calls_for(fn, min_seconds) for fn in fns]
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, (fn, n) in enumerate(zip(fns, calls)):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            best[i] = min(best[i], (time.perf_counter() - start) / n)
    return best


def ratio(a, b):
    """a / b, or None when either side is missing."""
    if a is None or b is None or b == 0:
        return None
    return a / b
