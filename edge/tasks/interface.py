"""What fedzo needs of a task (docs/tasks.md), checked once when a task is built.

A task is any object with:

    name               str: what actor files record as their task
    model, data        the raw mujoco.MjModel and MjData it simulates
    obs_dim, act_dim   observation and action sizes; act_dim == model.nu
    dt                 simulated seconds per step (the comparison page's clips)
    max_episode_steps  the task's own time limit in steps; a run assigns a
                       shorter one to cut training episodes, so it must be settable
    reset(seed) -> obs                     start an episode; the same seed, the same start
    step(action) -> (obs, reward, terminated, truncated)
                                           truncated once max_episode_steps steps are done
    observe() -> obs                       the current observation

Observations are float64 arrays of shape (obs_dim,), which may be one buffer
the task overwrites; actions arrive as float64 arrays of shape (act_dim,). The
policy's actions are scaled to the actuators' control ranges
(model.actuator_ctrlrange), so every actuator must have a finite one.

Optional: `alive_bonus`, a per-step reward for not having fallen, which
`fedzo pretrain` subtracts while training (as for hopper and walker2d).
"""
import numpy as np

REQUIRED = ("name", "model", "data", "obs_dim", "act_dim", "dt", "max_episode_steps",
            "reset", "step", "observe")


class TaskError(ValueError):
    """A task that cannot be built or does not keep the interface; one line, naming the
    task (and the file and field where there is one)."""


def check_task(task, spec: str):
    """`task` if it keeps the interface above (a reset included), else TaskError saying what is wrong."""
    missing = [a for a in REQUIRED if not hasattr(task, a)]
    if missing:
        raise TaskError(f"task {spec}: {type(task).__name__} lacks {', '.join(missing)} (docs/tasks.md)")
    for attr in ("obs_dim", "act_dim", "max_episode_steps"):
        value = getattr(task, attr)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise TaskError(f"task {spec}: {attr} must be a positive whole number, got {value!r}")
    if task.act_dim != task.model.nu:
        raise TaskError(f"task {spec}: act_dim is {task.act_dim} but the model has {task.model.nu} actuators")
    ranges = np.asarray(task.model.actuator_ctrlrange, np.float64)
    bad = [i for i, (lo, hi) in enumerate(ranges) if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi)]
    if bad:
        raise TaskError(f"task {spec}: actuator {bad[0]} has no control range; give every actuator a "
                        f"ctrlrange (the policy's actions are scaled to it)")
    obs = task.reset(0)
    if np.shape(obs) != (task.obs_dim,):
        raise TaskError(f"task {spec}: reset returned an observation of shape {np.shape(obs)}, "
                        f"expected ({task.obs_dim},)")
    return task
