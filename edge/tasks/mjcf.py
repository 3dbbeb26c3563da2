"""A task made of an MJCF file and its description (`robot.xml` + `robot.task.json`).

`MJCFTask(path)` compiles the model, reads the description beside it
(description.py) and keeps the task interface (interface.py): observations
from qpos, qvel and named sensors, a reward summed from sensor terms, a
control cost and an alive bonus, termination when a sensor leaves its range,
uniform reset noise drawn like the built-in tasks' (all qpos, then all qvel).

MuJoCo computes sensors inside mj_step before it integrates, so after a step
they describe the state one physics step back; a task whose rules read
sensors therefore calls mj_forward after its steps (one more forward pass per
task step), so that every sensor describes the state the step ended in.

For rules the description cannot say, subclass it and override `reward`
and/or `terminated` (docs/tasks.md shows how); everything else stays.
"""
from pathlib import Path

import mujoco
import numpy as np

from ._model import load_model_file
from .base import _sum_of_squares
from .description import Description, SensorUse, read_description
from .interface import TaskError

_mj_step, _mj_forward = mujoco.mj_step, mujoco.mj_forward


class MJCFTask:
    """An MJCF model with the rules of its description; see the module docstring."""

    name: str = ""      # a subclass may name its task here; else the description's name counts

    def __init__(self, xml_path, description: Description | None = None):
        xml_path = Path(xml_path)
        if not xml_path.is_file():
            raise TaskError(f"no MJCF file at {xml_path}")
        self.description = d = description or read_description(xml_path)
        try:
            self.model, self.data = load_model_file(xml_path)
        except ValueError as exc:                      # MuJoCo's compiler, several lines
            raise TaskError(f"{xml_path}: {' '.join(str(exc).split())}") from None
        model, data = self.model, self.data
        where = f"{xml_path} ({Path(xml_path).stem}.task.json)"
        self.name = self.name or d.name
        self.frame_skip, self.max_episode_steps = d.frame_skip, d.max_episode_steps
        self.dt = model.opt.timestep * d.frame_skip
        self.act_dim = model.nu
        self.action_low = model.actuator_ctrlrange[:, 0].copy()
        self.action_high = model.actuator_ctrlrange[:, 1].copy()
        self.init_qpos, self.init_qvel = data.qpos.copy(), data.qvel.copy()
        sensors = {name: self._sensor_slice(name, where) for name in sorted(d.sensors)}
        # the observation as (source array, slice) pieces copied into one buffer
        self._pieces = [(data.qpos if o == "qpos" else data.qvel if o == "qvel" else data.sensordata,
                         slice(None) if o in ("qpos", "qvel") else sensors[o]) for o in d.observation]
        self.obs_dim = sum(len(src[sl]) for src, sl in self._pieces)
        self._obs = np.zeros(self.obs_dim, np.float64)
        self._reward_terms = [(self._reader(use, sensors, where), w) for use, w in d.sensor_terms]
        self._limits = [(self._reader(use, sensors, where), low, high) for use, low, high in d.terminate]
        self._needs_forward = bool(sensors)
        self._rng = None
        self._elapsed_steps = 0

    def _sensor_slice(self, name: str, where: str) -> slice:
        sid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SENSOR, name)
        if sid < 0:
            raise TaskError(f"{where}: no sensor named {name!r} in the model")
        adr, dim = int(self.model.sensor_adr[sid]), int(self.model.sensor_dim[sid])
        return slice(adr, adr + dim)

    def _reader(self, use: SensorUse, sensors: dict, where: str):
        """A function of no arguments giving the sensor's number as `use` says."""
        view = self.data.sensordata[sensors[use.sensor]]
        if use.use in ("value", "cos") and view.size != 1:
            raise TaskError(f"{where}: sensor {use.sensor!r} has {view.size} values; "
                            f"\"use\": \"{use.use}\" needs one (square, abs or norm take several)")
        return {"value": lambda: view.item(0), "cos": lambda: float(np.cos(view.item(0))),
                "square": lambda: _sum_of_squares(view), "abs": lambda: float(np.abs(view).sum()),
                "norm": lambda: float(np.sqrt(_sum_of_squares(view)))}[use.use]

    # --- the task interface -------------------------------------------------
    def reset(self, seed=None) -> np.ndarray:
        """Rest state plus uniform noise (all qpos, then all qvel), from np.random.default_rng(seed)."""
        if seed is not None or self._rng is None:
            self._rng = np.random.default_rng(seed)
        d = self.description
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:] = self.init_qpos + self._rng.uniform(-d.noise_qpos, d.noise_qpos, self.model.nq)
        self.data.qvel[:] = self.init_qvel + self._rng.uniform(-d.noise_qvel, d.noise_qvel, self.model.nv)
        _mj_forward(self.model, self.data)
        self._elapsed_steps = 0
        return self.observe()

    def step(self, action):
        """Hold `action` for frame_skip physics steps: (obs, reward, terminated, truncated)."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (self.act_dim,):
            raise ValueError(f"{self.name}: action must have shape ({self.act_dim},), got {a.shape}")
        self.data.ctrl[:] = a
        _mj_step(self.model, self.data, self.frame_skip)
        if self._needs_forward:
            _mj_forward(self.model, self.data)
        terminated = self.terminated()
        reward = self.reward(a, terminated)
        self._elapsed_steps += 1
        return self.observe(), reward, terminated, self._elapsed_steps >= self.max_episode_steps

    def observe(self) -> np.ndarray:
        """The observation, in one buffer the next call overwrites."""
        start = 0
        for source, sl in self._pieces:
            values = source[sl]
            self._obs[start:start + len(values)] = values
            start += len(values)
        return self._obs

    # --- the rules (override in a subclass for what the description cannot say) ---
    def reward(self, action: np.ndarray, terminated: bool) -> float:
        """Sensor terms + control weight * sum(action^2) + the alive weight unless the episode ended."""
        d = self.description
        total = sum(w * read() for read, w in self._reward_terms)
        if d.control_weight:
            total += d.control_weight * _sum_of_squares(action)
        if d.alive_weight and not terminated:
            total += d.alive_weight
        return total

    def terminated(self) -> bool:
        """Whether a termination sensor has left its open range (NaN counts as out)."""
        return any(not low < read() < high for read, low, high in self._limits)

    @property
    def elapsed_steps(self) -> int:
        """Steps taken since the last reset."""
        return self._elapsed_steps

    def __repr__(self) -> str:
        return f"<MJCFTask {self.name!r} obs_dim={self.obs_dim} act_dim={self.act_dim} frame_skip={self.frame_skip}>"
