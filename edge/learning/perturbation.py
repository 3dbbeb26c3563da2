"""Which perturbation vectors v a run uses: the kernel's packed +/-1 signs, or Gaussian.

Rademacher (+/-1, the default and the paper's choice) goes through the
packed-bit kernel. Gaussian v ~ N(0, I) exists only as an experiment option
(the paper's ablation): it is drawn with NumPy from the block's own stream
(counter word 2 = GAUSSIAN_TAG, so it never overlaps the sign words),
scaled to whole LSBs and added with saturation. It materialises one block of
float64 values, and its bits rest on NumPy's normal sampler being the same
on every replica, so it is for simulations, not for deployments.
"""
import numpy as np

KINDS = ("rademacher", "gaussian")
GAUSSIAN_TAG = 0x6A55  # counter word 2 of the Gaussian draws


def _gaussian(seed, stream, round_, n) -> np.ndarray:
    key = np.array([seed, stream], dtype=np.uint64)
    counter = np.array([0, round_, GAUSSIAN_TAG, 0], dtype=np.uint64)
    return np.random.Generator(np.random.Philox(key=key, counter=counter)).standard_normal(n)


def _add_gaussian(values, seed, stream, round_, steps) -> int:
    info = np.iinfo(values.dtype)
    wide = values.astype(np.int64) + np.rint(steps * _gaussian(seed, stream, round_, values.size)).astype(np.int64)
    saturated = int(np.count_nonzero((wide > info.max) | (wide < info.min)))
    values[:] = np.clip(wide, info.min, info.max)
    return saturated


def perturb(store, kind, start, stop, seed, stream, round_, steps, saved) -> int:
    """theta[start:stop] += steps * v, saving the block in `saved` first; saturations."""
    if kind == "rademacher":
        return store.perturb(start, stop, seed, stream, round_, steps, saved)
    saved[:] = store.values[start:stop]
    n = _add_gaussian(store.values[start:stop], seed, stream, round_, steps)
    store.saturations += n
    return n


def update(store, kind, start, stop, seed, stream, round_, steps) -> int:
    """theta[start:stop] += steps * v (steps carries the vote's sign); saturations."""
    if kind == "rademacher":
        return store.update(start, stop, seed, stream, round_, steps)
    n = _add_gaussian(store.values[start:stop], seed, stream, round_, steps)
    store.saturations += n
    return n
