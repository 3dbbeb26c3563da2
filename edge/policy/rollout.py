"""Episodes with the policy in the loop, written for speed.

The loop body is the least Python that can run an episode: the policy and the
task both work in preallocated buffers, so nothing is allocated per step.
"""
import numpy as np

from fedzo.edge.learning.preference import Batch


def run_episode(task, policy, reset_seed: int) -> tuple:
    """One episode from `reset_seed` until termination or the time limit: (return, steps)."""
    obs = task.reset(reset_seed)
    act, step = policy.act, task.step
    total, steps = 0.0, 0
    while True:
        obs, reward, terminated, truncated = step(act(obs))
        total += reward
        steps += 1
        if terminated or truncated:
            return total, steps


def run_batch(task, policy, reset_seeds) -> Batch:
    """D episodes, one per reset seed: a Batch with their true returns."""
    returns = np.empty(len(reset_seeds))
    steps = 0
    for i, seed in enumerate(reset_seeds):
        returns[i], n = run_episode(task, policy, seed)
        steps += n
    return Batch(returns=returns, episode_seeds=list(reset_seeds), steps=steps)
