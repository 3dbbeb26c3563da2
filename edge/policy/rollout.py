"""Episodes with the policy in the loop, written for speed.

The loop body is the least Python that can run an episode: the policy and the
task both work in preallocated buffers, so nothing is allocated per step.
"""
import numpy as np

from fedzo.edge.learning.preference import Batch


def run_episode(task, policy, reset_seed: int) -> tuple:
    """One episode from `reset_seed` until termination or the time limit: (return, steps).

    A locomotion task with the C forward runs its fused loop (`LocomotionTask.run_fused`:
    observation, action and controls in one C call per step), which is this loop's
    episode bit for bit."""
    observe_act = fused_step(task, policy)
    if observe_act is not None:
        return task.run_fused(observe_act, reset_seed)
    obs = task.reset(reset_seed)
    act, step = policy.act, task.step
    total, steps = 0.0, 0
    while True:
        obs, reward, terminated, truncated = step(act(obs))
        total += reward
        steps += 1
        if terminated or truncated:
            return total, steps


def fused_step(task, policy):
    """The policy's fused observe-and-act for `task`, or None (no C forward, or a task without it)."""
    bind = getattr(getattr(policy, "forward", None), "observe_act_for", None)
    return None if bind is None else bind(task)


def run_episode_recorded(task, policy, reset_seed: int, recorder) -> tuple:
    """`run_episode` that also records the body poses a person is shown: (return, steps, clip).

    The recorder only reads MjData, so the episode (and its return) is the
    one `run_episode` would run; the loop is separate to keep that one lean.
    """
    obs = task.reset(reset_seed)
    recorder.begin()
    act, step, after = policy.act, task.step, recorder.after_step
    total, steps = 0.0, 0
    while True:
        obs, reward, terminated, truncated = step(act(obs))
        total += reward
        steps += 1
        after(steps)
        if terminated or truncated:
            return total, steps, recorder.end(steps)


def run_batch(task, policy, reset_seeds, recorder=None) -> Batch:
    """D episodes, one per reset seed: a Batch with their true returns
    (and, with a recorder, each episode's clip in `clips`)."""
    returns = np.empty(len(reset_seeds))
    steps = 0
    clips = None if recorder is None else []
    for i, seed in enumerate(reset_seeds):
        if recorder is None:
            returns[i], n = run_episode(task, policy, seed)
        else:
            returns[i], n, clip = run_episode_recorded(task, policy, seed, recorder)
            clips.append(clip)
        steps += n
    return Batch(returns=returns, episode_seeds=list(reset_seeds), steps=steps, clips=clips)
