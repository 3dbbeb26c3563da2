"""The fixed-point parameter store (DESIGN.md §5).

theta lives as integers: int16 by default (int32 optional) with a power-of-two
scale, value = q * 2**-frac_bits. Perturb, restore and update are integer
operations done by `fedzo.edge.kernel`, so every replica gets the same bits on any
CPU. Step sizes alpha and mu are given in real units and converted to whole
LSB steps (at least 1); `FixedPoint.steps` reports what was used.
"""
from dataclasses import dataclass

import numpy as np

from fedzo.edge import kernel
from fedzo.edge.learning.store_format import STORE_DTYPES, theta_hash

# The automatic scale keeps this factor of headroom above the largest |theta|,
# so that learning can grow weights without saturating at once.
DEFAULT_HEADROOM = 2.0



@dataclass(frozen=True)
class FixedPoint:
    """A storage type and scale: value = q * 2**-frac_bits."""

    dtype: np.dtype
    frac_bits: int

    def __post_init__(self):
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        if self.dtype not in STORE_DTYPES:
            raise ValueError(f"store dtype must be int16 or int32, not {self.dtype}")
        if not 0 <= self.frac_bits < 8 * self.dtype.itemsize:
            raise ValueError(f"frac_bits must be in [0, {8 * self.dtype.itemsize}), got {self.frac_bits}")

    @property
    def lsb(self) -> float:
        """The real value of one least-significant bit."""
        return 2.0 ** -self.frac_bits

    @property
    def max_value(self) -> float:
        """The largest representable real value."""
        return np.iinfo(self.dtype).max * self.lsb

    def steps(self, real: float) -> int:
        """A step size in real units as whole LSBs, at least 1."""
        if not real > 0:
            raise ValueError(f"step sizes must be positive, got {real}")
        return max(1, int(round(real / self.lsb)))

    @classmethod
    def for_values(cls, values, dtype=np.int16, headroom=DEFAULT_HEADROOM) -> "FixedPoint":
        """The finest scale that holds max|values| * headroom without saturating."""
        dtype = np.dtype(dtype)
        peak = float(np.max(np.abs(values))) * headroom if np.size(values) else 0.0
        limit = np.iinfo(dtype).max
        for frac_bits in range(8 * dtype.itemsize - 2, -1, -1):
            if peak * 2.0 ** frac_bits <= limit:
                return cls(dtype, frac_bits)
        raise ValueError(f"values up to {peak / headroom:g} do not fit in {dtype}")


class ParameterStore:
    """theta as fixed-point integers, with the kernel's block operations.

    Blocks are given as [start, stop) element ranges; their sign bits start at
    bit 0 of the block's stream (DESIGN.md §4). `saturations` counts every entry that
    saturated in a perturbation or an update since the store was made.
    """

    def __init__(self, values: np.ndarray, fmt: FixedPoint):
        values = np.ascontiguousarray(values)
        if values.dtype != fmt.dtype or values.ndim != 1:
            raise ValueError(f"values must be a 1-D {fmt.dtype} array")
        self.values = values
        self.fmt = fmt
        self.saturations = 0

    @classmethod
    def from_float(cls, theta, fmt: FixedPoint = None) -> "ParameterStore":
        """Quantise float parameters (choosing the scale if fmt is None)."""
        theta = np.asarray(theta, dtype=np.float32).reshape(-1)
        fmt = fmt or FixedPoint.for_values(theta)
        values, saturated = kernel.quantize(theta, fmt.frac_bits, fmt.dtype)
        store = cls(values, fmt)
        store.saturations = saturated
        return store

    @property
    def d(self) -> int:
        """Number of parameters."""
        return self.values.size

    @property
    def nbytes(self) -> int:
        """Bytes held by the integer parameters."""
        return self.values.nbytes

    def to_float(self, out=None) -> np.ndarray:
        """theta as float32 (into `out` if given)."""
        return kernel.dequantize(self.values, self.fmt.frac_bits, out)

    def dequantize_range(self, start: int, stop: int, out: np.ndarray) -> None:
        """Refresh out[start:stop] (float32, length d) from the store."""
        kernel.dequantize(self.values[start:stop], self.fmt.frac_bits, out[start:stop])

    def scratch(self, start: int, stop: int) -> np.ndarray:
        """A buffer that can hold block [start, stop) for an exact restore."""
        return np.empty(stop - start, dtype=self.fmt.dtype)

    def perturb(self, start, stop, seed, stream, round_, steps, saved) -> int:
        """theta[start:stop] += steps * v, saving the block in `saved` first."""
        n = kernel.perturb(self.values[start:stop], seed, stream, round_, steps, saved)
        self.saturations += n
        return n

    def restore(self, start, stop, saved) -> None:
        """Undo `perturb` on [start, stop), bit for bit."""
        kernel.restore(self.values[start:stop], saved)

    def update(self, start, stop, seed, stream, round_, steps) -> int:
        """theta[start:stop] += steps * v without saving (the learning step)."""
        n = kernel.update(self.values[start:stop], seed, stream, round_, steps)
        self.saturations += n
        return n

    def digest(self) -> bytes:
        """Short hash of theta's bits (`theta_hash`), identical on every replica that agrees."""
        return theta_hash(self.values, self.fmt.frac_bits)

    def set_from_float(self, theta) -> int:
        """Overwrite theta with quantised float values (same format); returns saturations."""
        theta = np.asarray(theta, np.float32).reshape(-1)
        if theta.size != self.d:
            raise ValueError(f"expected {self.d} parameters, got {theta.size}")
        values, saturated = kernel.quantize(theta, self.fmt.frac_bits, self.fmt.dtype)
        self.values[:] = values
        self.saturations += saturated
        return saturated

    def copy(self) -> "ParameterStore":
        """An independent replica with the same bits and format."""
        twin = ParameterStore(self.values.copy(), self.fmt)
        twin.saturations = self.saturations
        return twin
