"""The machinery shared by fedzo's locomotion tasks.

`LocomotionTask` runs one MuJoCo model on the raw `mujoco` bindings with
Gymnasium v5 semantics: an action is held for `frame_skip` physics steps, the
reward is forward speed minus a quadratic control cost (plus a survival bonus
for tasks that can fall), and an episode is truncated after 1000 steps.

It is written for the rollout loop, which calls `step` thousands of times per
round: the observation lives in one preallocated buffer, the NumPy views of
MjData it reads are made once, and a step does no array allocation beyond
what MuJoCo itself does.

A concrete task (see hopper.py, ...) sets the class attributes below and, if
it can fall, overrides `_is_healthy`.
"""

from __future__ import annotations

import mujoco
import numpy as np

from ._model import load_model

_mj_step = mujoco.mj_step  # bound once: the hot path calls it every step


class LocomotionTask:
    """One MuJoCo locomotion task (Gymnasium v5 rules, raw mujoco bindings).

    Attributes:
        name: task name ("hopper", ...).
        model, data: the raw mujoco.MjModel and mujoco.MjData.
        obs_dim, act_dim: observation and action sizes.
        frame_skip: physics steps per `step`.
        dt: simulated seconds per `step` (timestep * frame_skip).
        max_episode_steps: steps after which `step` reports truncated (1000).
        action_low, action_high: the actuators' control ranges (MuJoCo clamps
            the applied control to them; the control cost uses the raw action).

    Buffers: `reset`, `step` and `observe` all return the same internal
    float64 array, overwritten by the next call to any of them. Copy it
    (`obs.copy()`) to keep an observation.
    """

    # --- set by each task -------------------------------------------------
    name: str = ""
    frame_skip: int = 1
    forward_reward_weight: float = 1.0
    ctrl_cost_weight: float = 0.0
    healthy_reward: float = 0.0  # paid on every step that ends healthy
    terminate_when_unhealthy: bool = False
    reset_noise_scale: float = 0.0
    obs_skip_qpos: int = 1  # leading qpos entries (x, or x and y) left out of obs
    qvel_clip: float | None = None  # observed velocities clipped to +-this
    max_episode_steps: int = 1000

    def __init__(self) -> None:
        self.model, self.data = load_model(self.name)
        model, data = self.model, self.data
        nq, nv = model.nq, model.nv
        n_pos = nq - self.obs_skip_qpos
        self.obs_dim = n_pos + nv
        self.act_dim = model.nu
        self.dt = model.opt.timestep * self.frame_skip
        self.action_low = model.actuator_ctrlrange[:, 0].copy()
        self.action_high = model.actuator_ctrlrange[:, 1].copy()
        # the model's rest state (qpos0, e.g. rootz = 1.25), around which
        # reset noise is drawn
        self.init_qpos = data.qpos.copy()
        self.init_qvel = data.qvel.copy()

        # Views made once: MjData's arrays keep their memory for its lifetime
        # (mj_resetData does not reallocate), so these stay valid.
        self._qpos = data.qpos
        self._qvel = data.qvel
        self._ctrl = data.ctrl
        self._obs = np.zeros(self.obs_dim, dtype=np.float64)
        self._obs_pos = self._obs[:n_pos]
        self._obs_vel = self._obs[n_pos:]
        self._qpos_observed = self._qpos[self.obs_skip_qpos:]
        # the clip bounds as arrays: an array operand spares NumPy converting
        # a Python scalar on every call
        if self.qvel_clip is not None:
            self._vel_hi = np.full(nv, self.qvel_clip, dtype=np.float64)
            self._vel_lo = np.full(nv, -self.qvel_clip, dtype=np.float64)
        # the objects step uses every call and that never change for this
        # instance, read with one attribute lookup (the task's rules, which a
        # caller may adjust, e.g. max_episode_steps, are read where used)
        self._step_plan = (self._ctrl, self._ctrl.shape, self._qpos, self.model, self.data)

        self._rng: np.random.Generator | None = None
        self._elapsed_steps = 0

    # --- episode control ----------------------------------------------------
    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode from the rest state plus reset noise; return obs.

        With a seed, the noise generator is re-created as
        np.random.default_rng(seed) and its draws are those Gymnasium's
        `env.reset(seed=seed)` makes, so the initial state equals Gymnasium's.
        Without one, the generator continues its stream (a fresh, unseeded
        one on the first reset), like Gymnasium's.

        Returns the internal observation buffer (see the class docstring).
        """
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        elif self._rng is None:
            self._rng = np.random.default_rng()
        mujoco.mj_resetData(self.model, self.data)
        qpos_noise, qvel_noise = self._reset_noise(self._rng)
        self._set_state_unchecked(self.init_qpos + qpos_noise, self.init_qvel + qvel_noise)
        self._elapsed_steps = 0
        return self.observe()

    def _reset_noise(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Noise added to (qpos, qvel) at reset: uniform in +-scale for both.

        The draw order (all of qpos, then all of qvel) is Gymnasium's.
        """
        s = self.reset_noise_scale
        return (
            rng.uniform(low=-s, high=s, size=self.model.nq),
            rng.uniform(low=-s, high=s, size=self.model.nv),
        )

    def set_state(self, qpos, qvel) -> None:
        """Set joint positions and velocities (for tests and replays).

        Recomputes the derived quantities (mj_forward) but leaves the episode's
        step count and the controls as they are.
        """
        qpos = np.asarray(qpos, dtype=np.float64)
        qvel = np.asarray(qvel, dtype=np.float64)
        if qpos.shape != (self.model.nq,) or qvel.shape != (self.model.nv,):
            raise ValueError(
                f"{self.name}: set_state wants qpos of shape ({self.model.nq},) and "
                f"qvel of shape ({self.model.nv},), got {qpos.shape} and {qvel.shape}"
            )
        self._set_state_unchecked(qpos, qvel)

    def _set_state_unchecked(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        self._qpos[:] = qpos
        self._qvel[:] = qvel
        mujoco.mj_forward(self.model, self.data)

    @property
    def elapsed_steps(self) -> int:
        """Steps taken since the last reset."""
        return self._elapsed_steps

    # --- the hot path ---------------------------------------------------------
    def step(self, action) -> tuple[np.ndarray, float, bool, bool]:
        """Apply `action` for `frame_skip` physics steps.

        Returns (obs, reward, terminated, truncated). `obs` is the internal
        buffer, overwritten by the next step/reset/observe: copy it to keep
        it. `terminated` is True when a task that can fall is no longer
        healthy; `truncated` is True from step `max_episode_steps` (1000) of
        the episode on. Stepping on after either is allowed (the caller
        decides), as with a bare Gymnasium env.

        The control cost is computed in float64 on the action as given (not
        clipped); MuJoCo clamps the applied control to the ctrl range.
        """
        ctrl, ctrl_shape, qpos, model, data = self._step_plan
        a = np.asarray(action, dtype=np.float64)
        if a.shape != ctrl_shape:
            raise ValueError(f"{self.name}: action must have shape ({self.act_dim},), got {a.shape}")
        x_before = qpos.item(0)
        ctrl[:] = a
        # mj_rnePostConstraint (which Gymnasium also calls) only fills cacc and
        # the cfrc_* force arrays; no observation or reward here reads them.
        _mj_step(model, data, self.frame_skip)
        reward, terminated = self._outcome(x_before, _sum_of_squares(a))

        self._elapsed_steps = elapsed = self._elapsed_steps + 1
        truncated = elapsed >= self.max_episode_steps
        return self.observe(), reward, terminated, truncated

    def _outcome(self, x_before: float, squares: float) -> tuple[float, bool]:
        """(reward, terminated) of the step just taken from x position `x_before`,
        `squares` being the action's sum of squares (the control cost's)."""
        x_velocity = (self._qpos.item(0) - x_before) / self.dt
        forward_reward = self.forward_reward_weight * x_velocity
        ctrl_cost = self.ctrl_cost_weight * squares
        healthy_reward, terminate_when_unhealthy = self.healthy_reward, self.terminate_when_unhealthy
        if healthy_reward or terminate_when_unhealthy:
            healthy = self._is_healthy()
            # same order of operations as Gymnasium: (forward + alive) - cost
            return (forward_reward + healthy * healthy_reward) - ctrl_cost, terminate_when_unhealthy and not healthy
        return forward_reward - ctrl_cost, False

    def fused_layout(self):
        """What a fused observe-and-act needs (fedzo.edge.policy.forward): (observed qpos,
        qvel, velocity clip or -1, observation buffer, controls), views made once; None
        for a subclass whose step or observation is its own."""
        cls = type(self)
        if cls.step is not LocomotionTask.step or cls.observe is not LocomotionTask.observe:
            return None
        clip = -1.0 if self.qvel_clip is None else float(self.qvel_clip)
        return self._qpos_observed, self._qvel, clip, self._obs, self._ctrl

    def run_fused(self, observe_act, reset_seed) -> tuple[float, int]:
        """One episode from `reset_seed`, until termination or the time limit: (return, steps).

        `observe_act()` writes the observation `observe` would write, puts the
        policy's action for it in the controls and returns the action's sum of
        squares (fedzo.edge.policy.forward binds it to `fused_layout`). The
        episode is, bit for bit, the one `reset` and `step` run with that
        policy, without their per-step NumPy calls.
        """
        self.reset(reset_seed)
        qpos, model, data, nstep = self._qpos, self.model, self.data, self.frame_skip
        outcome, limit = self._outcome, self.max_episode_steps
        total, steps = 0.0, 0
        while True:
            x_before = qpos.item(0)
            squares = observe_act()
            _mj_step(model, data, nstep)
            reward, terminated = outcome(x_before, squares)
            total += reward
            steps += 1
            if terminated or steps >= limit:
                self._elapsed_steps = steps
                self.observe()              # the buffer as `step` would have left it
                return total, steps

    def observe(self) -> np.ndarray:
        """Write the current observation into the internal buffer and return it.

        Layout: qpos without its first `obs_skip_qpos` entries, then qvel
        (clipped to +-`qvel_clip` where the task says so). The buffer is
        overwritten by the next step/reset/observe.
        """
        self._obs_pos[:] = self._qpos_observed
        if self.qvel_clip is None:
            self._obs_vel[:] = self._qvel
        else:
            # minimum then maximum is np.clip's result (NaN stays NaN) at about
            # a third of np.clip's call overhead on these short vectors
            out = self._obs_vel
            np.minimum(self._qvel, self._vel_hi, out=out)
            np.maximum(out, self._vel_lo, out=out)
        return self._obs

    def _is_healthy(self) -> bool:
        """Whether the body is in its healthy region (tasks that can fall)."""
        return True

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.name!r} obs_dim={self.obs_dim} "
            f"act_dim={self.act_dim} frame_skip={self.frame_skip}>"
        )


def _sum_of_squares(a: np.ndarray) -> float:
    """sum(a**2), summed left to right in float64.

    For up to 8 entries this is bit-identical to NumPy's np.sum(np.square(a))
    (which sums short arrays left to right too), at a fifth of its cost: the
    per-call overhead of two NumPy reductions dominates for 2 to 6 actions.
    """
    total = 0.0
    for v in a.tolist():
        total += v * v
    return total
