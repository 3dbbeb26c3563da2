"""Hopper: a one-legged planar robot that must hop forward without falling.

Rules (Gymnasium Hopper-v5, default arguments):
    model        models/hopper.xml; timestep 0.002 s (RK4), frame_skip 4,
                 so dt = 0.008 s per step; 3 actuators, actions in [-1, 1]
    observation  11 = qpos[1:6] (z, torso angle, thigh, leg, foot angles)
                 + qvel[0:6] clipped to [-10, 10]
    reward       x_velocity + 1 (if healthy) - 1e-3 * sum(action^2)
    healthy      1) every entry of (qpos[2:], qvel) strictly in (-100, 100)
                 2) z = qpos[1] > 0.7
                 3) torso angle = qpos[2] strictly in (-0.2, 0.2)
    terminated   when not healthy after a step
    reset noise  qpos0 + U(-5e-3, 5e-3) (6 values), then qvel U(-5e-3, 5e-3) (6)
"""

from __future__ import annotations

from .base import LocomotionTask


class Hopper(LocomotionTask):
    """The hopper task (see the module docstring for its rules)."""

    name = "hopper"
    frame_skip = 4
    forward_reward_weight = 1.0
    ctrl_cost_weight = 1e-3
    healthy_reward = 1.0
    terminate_when_unhealthy = True
    reset_noise_scale = 5e-3
    obs_skip_qpos = 1
    qvel_clip = 10.0

    healthy_state_range = (-100.0, 100.0)
    healthy_z_range = (0.7, float("inf"))
    healthy_angle_range = (-0.2, 0.2)

    def __init__(self) -> None:
        super().__init__()
        # (qpos[2:], qvel) is what the state-range rule checks: two views
        # made once instead of a concatenation each step
        self._state_views = (self._qpos[2:], self._qvel)

    def _is_healthy(self) -> bool:
        qpos = self._qpos
        lo, hi = self.healthy_z_range
        if not lo < qpos.item(1) < hi:
            return False
        lo, hi = self.healthy_angle_range
        if not lo < qpos.item(2) < hi:
            return False
        lo, hi = self.healthy_state_range
        # a plain loop over 10 floats beats NumPy's reductions here; a NaN
        # fails the test, so a blown-up state counts as unhealthy
        for view in self._state_views:
            for x in view.tolist():
                if not lo < x < hi:
                    return False
        return True
