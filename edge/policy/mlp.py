"""The policy: a deterministic tanh MLP actor (DESIGN.md §2), float32 NumPy.

Its parameters are one flat float32 vector in the order of `fedzo.edge.learning.layout`;
the weight matrices and bias vectors are views into that vector, so loading
or refreshing a block of theta updates the network with no copy. The
observation normalisation (mean, std) is frozen from pretraining, observations
are clipped to +/-OBS_CLIP after normalising, and the action is tanh-squashed
and scaled to the task's control range.

`act` returns a preallocated buffer (overwritten by the next call). It runs
once per env step, so it is one C call into the kernel (fz_mlp_act) where the
kernel is built; elsewhere its NumPy twin gives the same bits
(fedzo.edge.policy.forward has the exact formula: float32 sums in a fixed
order and fedzo's own tanh, the same on every platform).
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fedzo.edge.learning.layout import DEFAULT_HIDDEN, mlp_layers, mlp_param_count
from fedzo.edge.learning.saved_arrays import SavedArrays
from fedzo.edge.policy import forward
from fedzo.edge.protocol.constants import MAX_VECTOR_ELEMENTS

MAX_IO_DIM = 1 << 12          # observation and action sizes an actor file may declare
MAX_LAYERS = 16               # hidden layers an actor file may declare
MAX_INFO_BYTES = 1 << 20      # the actor's JSON notes (UCS-4 text)

OBS_CLIP = 10.0


class MLPPolicy:
    """obs -> tanh(W3 tanh(W2 tanh(W1 norm(obs) + b1) + b2) + b3), scaled to [low, high]."""

    def __init__(self, obs_dim, act_dim, hidden=DEFAULT_HIDDEN, obs_mean=None, obs_std=None,
                 act_low=-1.0, act_high=1.0, forward_impl=None):
        self.obs_dim, self.act_dim, self.hidden = int(obs_dim), int(act_dim), tuple(hidden)
        self.layers = mlp_layers(self.obs_dim, self.act_dim, self.hidden)
        self.theta = np.zeros(mlp_param_count(self.obs_dim, self.act_dim, self.hidden), np.float32)
        self.weights = [self.theta[l.weight_start:l.bias_start].reshape(l.outputs, l.inputs)
                        for l in self.layers]
        self.biases = [self.theta[l.bias_start:l.stop] for l in self.layers]
        # float32 normalisation as used in act, plus the float64 copy of the
        # mean that lets obs - mean run as a float64-only call; both change
        # only through set_normalisation, hence read-only
        self.obs_mean = np.zeros(self.obs_dim, np.float32)
        self.obs_scale = np.ones(self.obs_dim, np.float32)
        self._mean64 = np.zeros(self.obs_dim, np.float64)
        self.set_normalisation(obs_mean, obs_std)
        low = np.broadcast_to(np.asarray(act_low, np.float32), (self.act_dim,))
        high = np.broadcast_to(np.asarray(act_high, np.float32), (self.act_dim,))
        self._act_mid = ((high + low) / 2).astype(np.float32)
        self._act_half = ((high - low) / 2).astype(np.float32)
        self._action = np.empty(self.act_dim, np.float64)
        # None marks a scaling step that is the identity (the four tasks' [-1, 1]
        # controls): multiplying by 1 and adding 0 change no value (at most the
        # sign of a zero action)
        self._half = None if np.all(self._act_half == 1) else self._act_half
        self._mid = None if np.all(self._act_mid == 0) else self._act_mid.astype(np.float64)
        self._clip = np.float32(OBS_CLIP)
        self.bind_forward(forward_impl)

    def bind_forward(self, implementation=None) -> None:
        """Choose act's implementation: "c" (the kernel's fz_mlp_act), "numpy" (its
        bit-identical twin), or None for C where available (fedzo.edge.policy.forward)."""
        self.forward = forward.bind(self, implementation)
        # an instance attribute: the rollout loop calls act once per step, without a method lookup
        self.act = self.forward.act

    @property
    def d(self) -> int:
        """Number of parameters."""
        return self.theta.size

    def load(self, theta) -> None:
        """Set all parameters from a flat float vector of length d."""
        theta = np.asarray(theta, np.float32).reshape(-1)
        if theta.size != self.d:
            raise ValueError(f"expected {self.d} parameters, got {theta.size}")
        self.theta[:] = theta

    def refresh(self, store, start=0, stop=None) -> None:
        """Re-read parameters [start, stop) from a fixed-point ParameterStore."""
        store.dequantize_range(start, self.d if stop is None else stop, self.theta)

    def set_normalisation(self, obs_mean=None, obs_std=None) -> None:
        """Set the frozen observation normalisation (None: mean 0, std 1).

        The one way to change it: `act` reads obs_mean and obs_scale (and a
        float64 copy of the mean) through references taken at construction,
        so the arrays are updated in place here and are read-only otherwise.
        """
        mean = np.zeros(self.obs_dim) if obs_mean is None else np.asarray(obs_mean, np.float64)
        std = np.ones(self.obs_dim) if obs_std is None else np.asarray(obs_std, np.float64)
        if mean.shape != (self.obs_dim,) or std.shape != (self.obs_dim,):
            raise ValueError(f"obs_mean and obs_std must have shape ({self.obs_dim},)")
        for array in (self.obs_mean, self.obs_scale, self._mean64):
            array.flags.writeable = True
        self.obs_mean[:] = mean
        self.obs_scale[:] = 1.0 / np.maximum(std, 1e-8)
        self._mean64[:] = self.obs_mean  # float32 values, held in float64
        for array in (self.obs_mean, self.obs_scale, self._mean64):
            array.flags.writeable = False

    def act(self, obs) -> np.ndarray:
        """The deterministic action for one observation (a reused float64 buffer).

        Replaced per instance by the bound forward's act (see bind_forward)."""
        return self.forward.act(obs)


@dataclass
class Actor:
    """A saved policy: parameters, frozen normalisation and where it came from."""

    task: str
    obs_dim: int
    act_dim: int
    theta: np.ndarray
    obs_mean: np.ndarray
    obs_std: np.ndarray
    hidden: tuple = DEFAULT_HIDDEN
    info: dict = field(default_factory=dict)

    def policy(self, act_low=-1.0, act_high=1.0) -> MLPPolicy:
        """A ready MLPPolicy with this actor's parameters."""
        policy = MLPPolicy(self.obs_dim, self.act_dim, self.hidden, self.obs_mean, self.obs_std,
                           act_low, act_high)
        policy.load(self.theta)
        return policy

    def save(self, path) -> None:
        """Write the actor as a small .npz file."""
        import json
        np.savez_compressed(
            Path(path), task=self.task, obs_dim=self.obs_dim, act_dim=self.act_dim,
            theta=np.asarray(self.theta, np.float32), obs_mean=np.asarray(self.obs_mean, np.float64),
            obs_std=np.asarray(self.obs_std, np.float64), hidden=np.array(self.hidden),
            info=json.dumps(self.info, sort_keys=True))

    @classmethod
    def load(cls, path) -> "Actor":
        """Read an actor written by `save`; a one-line ValueError naming the file and the
        field if it is wrong. The shapes are read first, so theta's size is checked
        against them before theta itself is read."""
        import json
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no actor file at {path}")
        with SavedArrays(path, "fedzo actor file") as f:
            task = f.text("task")
            obs_dim, act_dim = f.integer("obs_dim", 1, MAX_IO_DIM), f.integer("act_dim", 1, MAX_IO_DIM)
            hidden = f.get("hidden", 8 * MAX_LAYERS)
            if hidden.ndim != 1 or hidden.dtype.kind not in "iu" or not all(0 < h <= MAX_VECTOR_ELEMENTS for h in hidden):
                raise f.error("hidden", f"must list positive layer widths, got {hidden!r}")
            hidden = tuple(int(h) for h in hidden)
            expected = mlp_param_count(obs_dim, act_dim, hidden)
            if expected > MAX_VECTOR_ELEMENTS:
                raise f.error("hidden", f"makes {expected} parameters, more than the {MAX_VECTOR_ELEMENTS} "
                                        f"a run can carry")
            theta = f.get("theta", 8 * expected)
            if theta.shape != (expected,) or theta.dtype.kind != "f":
                raise f.error("theta", f"holds {theta.size} parameters ({theta.dtype}), expected {expected} floats")
            obs = [f.get(name, 8 * obs_dim) for name in ("obs_mean", "obs_std")]
            try:
                info = json.loads(f.text("info", MAX_INFO_BYTES))
            except (ValueError, RecursionError) as exc:
                raise f.error("info", f"is not valid JSON: {exc}") from None
        return cls(task=task, obs_dim=obs_dim, act_dim=act_dim, theta=theta.astype(np.float32),
                   obs_mean=obs[0], obs_std=obs[1], hidden=hidden, info=info)
