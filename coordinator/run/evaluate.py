"""True return of a policy over fixed evaluation episodes (simulation only).

A run is always judged at the task's own time limit (1000 steps for the four
tasks), whatever horizon it trains at: a policy that learned to push hard and
fall just after a 200-step cut-off must not look better than it is. When the
training horizon is shorter, the same episodes also give the return at that
horizon (the return of an episode cut at step H is the sum of its first H
rewards), so both figures cost one set of rollouts.
"""
import math

import numpy as np


def evaluate(task, policy, reset_seeds, horizons) -> dict:
    """The true return of each evaluation episode at each horizon: {horizon: array, in seed order}.

    Episodes run to the largest horizon (or termination); `task.max_episode_steps`
    is set to it for the duration and put back after.
    """
    horizons = sorted(set(int(h) for h in horizons))
    limit = horizons[-1]
    out = {h: np.empty(len(reset_seeds)) for h in horizons}
    saved_limit, task.max_episode_steps = task.max_episode_steps, limit
    try:
        for i, seed in enumerate(reset_seeds):
            for h, value in zip(horizons, _returns_at(task, policy, seed, horizons)):
                out[h][i] = value
    finally:
        task.max_episode_steps = saved_limit
    return out


def returns_at_time_limit(task, policy, reset_seeds) -> np.ndarray:
    """Each evaluation episode's true return at the task's current time limit."""
    return evaluate(task, policy, reset_seeds, [task.max_episode_steps])[task.max_episode_steps]


def _returns_at(task, policy, reset_seed, horizons) -> list:
    """One episode's return cut at each of the (sorted) horizons."""
    obs = task.reset(reset_seed)
    act, step = policy.act, task.step
    cuts, total, steps = [], 0.0, 0
    while len(cuts) < len(horizons):
        obs, reward, terminated, truncated = step(act(obs))
        total += reward
        steps += 1
        while len(cuts) < len(horizons) and (steps == horizons[len(cuts)] or terminated or truncated):
            cuts.append(total)      # an episode that ended early has the same return at every later cut
    return cuts


def summarise(returns) -> dict:
    """Mean, standard error, spread and count of a set of returns, as plain floats for JSON."""
    returns = np.asarray(returns, float)
    n = int(returns.size)
    std = float(returns.std(ddof=1)) if n > 1 else 0.0
    return {"mean": float(returns.mean()), "se": std / math.sqrt(n), "std": std,
            "min": float(returns.min()), "max": float(returns.max()), "episodes": n}
