"""Swimmer: a three-link snake that must swim forward through a viscous fluid.

Rules (Gymnasium Swimmer-v5, default arguments):
    model        models/swimmer.xml; timestep 0.01 s (RK4), frame_skip 4,
                 so dt = 0.04 s; fluid density 4000, viscosity 0.1;
                 2 actuators, actions in [-1, 1]
    observation  8 = qpos[2:5] (body angle, two joint angles) + qvel[0:5]
                 (x and y positions left out; velocities not clipped)
    reward       x_velocity - 1e-4 * sum(action^2)
    terminated   never (episodes end by truncation at 1000 steps)
    reset noise  qpos0 + U(-0.1, 0.1) (5 values), then qvel U(-0.1, 0.1) (5)
"""

from __future__ import annotations

from .base import LocomotionTask


class Swimmer(LocomotionTask):
    """The swimmer task (see the module docstring for its rules)."""

    name = "swimmer"
    frame_skip = 4
    forward_reward_weight = 1.0
    ctrl_cost_weight = 1e-4
    reset_noise_scale = 0.1
    obs_skip_qpos = 2
    qvel_clip = None
