"""HalfCheetah: a planar two-legged runner; it cannot fall, only run badly.

Rules (Gymnasium HalfCheetah-v5, default arguments):
    model        models/halfcheetah.xml (14 kg); timestep 0.01 s (Euler),
                 frame_skip 5, so dt = 0.05 s; 6 actuators, actions in [-1, 1]
    observation  17 = qpos[1:9] (z, torso angle, six joint angles) + qvel[0:9]
                 (not clipped)
    reward       x_velocity - 0.1 * sum(action^2)
    terminated   never (episodes end by truncation at 1000 steps)
    reset noise  qpos0 + U(-0.1, 0.1) (9 values), then qvel 0.1 * N(0, 1) (9)
"""

from __future__ import annotations

import numpy as np

from .base import LocomotionTask


class HalfCheetah(LocomotionTask):
    """The halfcheetah task (see the module docstring for its rules)."""

    name = "halfcheetah"
    frame_skip = 5
    forward_reward_weight = 1.0
    ctrl_cost_weight = 0.1
    reset_noise_scale = 0.1
    obs_skip_qpos = 1
    qvel_clip = None

    def _reset_noise(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Uniform position noise, then Gaussian velocity noise (v5's order)."""
        s = self.reset_noise_scale
        qpos_noise = rng.uniform(low=-s, high=s, size=self.model.nq)
        qvel_noise = s * rng.standard_normal(self.model.nv)
        return qpos_noise, qvel_noise
