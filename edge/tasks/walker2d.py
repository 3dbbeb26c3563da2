"""Walker2d: a planar biped that must walk forward without falling.

Rules (Gymnasium Walker2d-v5, default arguments):
    model        models/walker2d.xml (both feet friction 1.9, as in v5);
                 timestep 0.002 s (RK4), frame_skip 4, so dt = 0.008 s;
                 6 actuators (right thigh, leg, foot, then left), actions in [-1, 1]
    observation  17 = qpos[1:9] (z, torso angle, six joint angles)
                 + qvel[0:9] clipped to [-10, 10]
    reward       x_velocity + 1 (if healthy) - 1e-3 * sum(action^2)
    healthy      z = qpos[1] strictly in (0.8, 2.0) and
                 torso angle = qpos[2] strictly in (-1, 1)
    terminated   when not healthy after a step
    reset noise  qpos0 + U(-5e-3, 5e-3) (9 values), then qvel U(-5e-3, 5e-3) (9)
"""

from __future__ import annotations

from .base import LocomotionTask


class Walker2d(LocomotionTask):
    """The walker2d task (see the module docstring for its rules)."""

    name = "walker2d"
    frame_skip = 4
    forward_reward_weight = 1.0
    ctrl_cost_weight = 1e-3
    healthy_reward = 1.0
    terminate_when_unhealthy = True
    reset_noise_scale = 5e-3
    obs_skip_qpos = 1
    qvel_clip = 10.0

    healthy_z_range = (0.8, 2.0)
    healthy_angle_range = (-1.0, 1.0)

    def _is_healthy(self) -> bool:
        qpos = self._qpos
        z_lo, z_hi = self.healthy_z_range
        a_lo, a_hi = self.healthy_angle_range
        return z_lo < qpos.item(1) < z_hi and a_lo < qpos.item(2) < a_hi
