"""fedzo's MuJoCo tasks, on the raw `mujoco` bindings (no Gymnasium at run time).

`make(name)` returns a fresh task for one of `TASK_NAMES`. Each task follows
its Gymnasium v5 counterpart (default constructor arguments) exactly: same
model physics, observation layout, reward, termination, reset-noise draws and
1000-step time limit, so `task.reset(seed)` starts where
`gymnasium.make(...).reset(seed=seed)` starts and both then agree step by step
(tests/edge/tasks/test_tasks_vs_gymnasium.py checks this).

    task = make("hopper")
    obs = task.reset(seed=0)              # float64, shape (task.obs_dim,)
    obs, reward, terminated, truncated = task.step(action)

`reset`, `step` and `observe` return one internal buffer that the next call
overwrites; copy an observation to keep it. Other attributes: `.model` and
`.data` (the raw MjModel and MjData), `.obs_dim`, `.act_dim`, `.frame_skip`,
`.dt`, `.max_episode_steps` (1000), `.action_low`/`.action_high`, and
`.set_state(qpos, qvel)`.

The rules (x_velocity is the change of qpos[0] over the step divided by dt;
ctrl = sum(action^2) of the action as given; "healthy" bounds are strict):

| task        | Gymnasium      | dt (timestep x skip)   | obs                                 | reward                                 | terminated when                                           | reset noise (qpos, then qvel)   |
|-------------|----------------|------------------------|-------------------------------------|----------------------------------------|-----------------------------------------------------------|---------------------------------|
| hopper      | Hopper-v5      | 0.002 x 4 = 0.008 (RK4)| 11: qpos[1:], clip(qvel, +-10)      | x_vel + 1*healthy - 1e-3*ctrl          | not healthy: z <= 0.7, abs(angle) >= 0.2, or any of qpos[2:], qvel outside (-100, 100) | U(+-5e-3), U(+-5e-3) |
| halfcheetah | HalfCheetah-v5 | 0.01 x 5 = 0.05 (Euler)| 17: qpos[1:], qvel                  | x_vel - 0.1*ctrl                       | never                                                     | U(+-0.1), 0.1*N(0,1)            |
| walker2d    | Walker2d-v5    | 0.002 x 4 = 0.008 (RK4)| 17: qpos[1:], clip(qvel, +-10)      | x_vel + 1*healthy - 1e-3*ctrl          | not healthy: z outside (0.8, 2.0) or angle outside (-1, 1) | U(+-5e-3), U(+-5e-3)           |
| swimmer     | Swimmer-v5     | 0.01 x 4 = 0.04 (RK4)  | 8: qpos[2:], qvel                   | x_vel - 1e-4*ctrl                      | never                                                     | U(+-0.1), U(+-0.1)              |

Every task is truncated at step 1000 of an episode. z is qpos[1] and the torso
angle qpos[2]. Each task module (hopper.py, ...) documents its rules in full,
and each model file (models/*.xml) its bodies and units.

A user's own task (docs/tasks.md) is named by a spec instead of a name:
`package.module:Class`, a `fedzo.tasks` entry point, or an MJCF file with a
description beside it (plugins.py tells them apart and builds them;
interface.py says what a task must provide; mjcf.py and description.py make
a task of an MJCF file). `make(spec)` builds any of them; `model_hash.py`
gives the compiled model's hash that the Welcome carries.
"""

from __future__ import annotations

import importlib

# name -> (module, class); imported on first use so that importing
# fedzo.edge.tasks (e.g. for TASK_NAMES) does not load mujoco
_TASK_CLASSES = {
    "hopper": ("hopper", "Hopper"),
    "halfcheetah": ("halfcheetah", "HalfCheetah"),
    "walker2d": ("walker2d", "Walker2d"),
    "swimmer": ("swimmer", "Swimmer"),
}

# The one list of task names (a run config, the commands and the benches check against it).
TASK_NAMES = tuple(_TASK_CLASSES)

__all__ = ["TASK_NAMES", "make", "task_class"]


def task_class(name: str):
    """Return the class of task `name`; ValueError for an unknown name."""
    if name not in _TASK_CLASSES:
        raise ValueError(f"unknown task {name!r}; valid names: {', '.join(TASK_NAMES)}")
    module_name, class_name = _TASK_CLASSES[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)


def make(spec: str):
    """Create a fresh task: one of TASK_NAMES, or a user's task spec (plugins.py).

    The task holds its own MjModel and MjData; call `reset(seed)` to begin an
    episode. Raises ValueError (a one-line TaskError for a spec that names no
    task, or a task that cannot be built or breaks the interface).
    """
    if spec in _TASK_CLASSES:
        return task_class(spec)()
    from .plugins import build, resolve
    return build(resolve(spec))
