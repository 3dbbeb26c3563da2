"""The policy: a deterministic tanh MLP actor (SPEC 2), float32 NumPy.

Its parameters are one flat float32 vector in the order of `edge.layout`;
the weight matrices and bias vectors are views into that vector, so loading
or refreshing a block of theta updates the network with no copy. The
observation normalisation (mean, std) is frozen from pretraining, observations
are clipped to +/-OBS_CLIP after normalising, and the action is tanh-squashed
and scaled to the task's control range.

`act` allocates nothing per call: it works in preallocated buffers and returns
a view of one (overwritten by the next call).
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.layout import DEFAULT_HIDDEN, mlp_layers, mlp_param_count

OBS_CLIP = 10.0


class MLPPolicy:
    """obs -> tanh(W3 tanh(W2 tanh(W1 norm(obs) + b1) + b2) + b3), scaled to [low, high]."""

    def __init__(self, obs_dim, act_dim, hidden=DEFAULT_HIDDEN, obs_mean=None, obs_std=None,
                 act_low=-1.0, act_high=1.0):
        self.obs_dim, self.act_dim, self.hidden = int(obs_dim), int(act_dim), tuple(hidden)
        self.layers = mlp_layers(self.obs_dim, self.act_dim, self.hidden)
        self.theta = np.zeros(mlp_param_count(self.obs_dim, self.act_dim, self.hidden), np.float32)
        self.weights = [self.theta[l.weight_start:l.bias_start].reshape(l.outputs, l.inputs)
                        for l in self.layers]
        self.biases = [self.theta[l.bias_start:l.stop] for l in self.layers]
        mean = np.zeros(self.obs_dim) if obs_mean is None else np.asarray(obs_mean)
        std = np.ones(self.obs_dim) if obs_std is None else np.asarray(obs_std)
        if mean.shape != (self.obs_dim,) or std.shape != (self.obs_dim,):
            raise ValueError(f"obs_mean and obs_std must have shape ({self.obs_dim},)")
        self.obs_mean = mean.astype(np.float32)
        self.obs_scale = (1.0 / np.maximum(std, 1e-8)).astype(np.float32)
        low = np.broadcast_to(np.asarray(act_low, np.float32), (self.act_dim,))
        high = np.broadcast_to(np.asarray(act_high, np.float32), (self.act_dim,))
        self._act_mid = ((high + low) / 2).astype(np.float32)
        self._act_half = ((high - low) / 2).astype(np.float32)
        self._input = np.empty(self.obs_dim, np.float32)
        self._outputs = [np.empty(l.outputs, np.float32) for l in self.layers]
        self._action = np.empty(self.act_dim, np.float64)

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

    def act(self, obs) -> np.ndarray:
        """The deterministic action for one observation (a reused float64 buffer)."""
        x = self._input
        np.subtract(obs, self.obs_mean, out=x, casting="unsafe")
        np.multiply(x, self.obs_scale, out=x)
        np.clip(x, -OBS_CLIP, OBS_CLIP, out=x)
        for weight, bias, out in zip(self.weights, self.biases, self._outputs):
            np.dot(weight, x, out=out)
            np.add(out, bias, out=out)
            np.tanh(out, out=out)
            x = out
        np.multiply(x, self._act_half, out=self._action, casting="unsafe")
        np.add(self._action, self._act_mid, out=self._action)
        return self._action


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
        """Read an actor written by `save`; a clear error if the file is wrong."""
        import json
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no actor file at {path}")
        try:
            with np.load(path, allow_pickle=False) as f:
                actor = cls(task=str(f["task"]), obs_dim=int(f["obs_dim"]), act_dim=int(f["act_dim"]),
                            theta=f["theta"].astype(np.float32), obs_mean=f["obs_mean"],
                            obs_std=f["obs_std"], hidden=tuple(int(h) for h in f["hidden"]),
                            info=json.loads(str(f["info"])))
        except (KeyError, ValueError, OSError) as exc:
            raise ValueError(f"{path} is not a fedzo actor file: {exc}") from exc
        expected = mlp_param_count(actor.obs_dim, actor.act_dim, actor.hidden)
        if actor.theta.size != expected:
            raise ValueError(f"{path}: {actor.theta.size} parameters, expected {expected}")
        return actor
