"""True return of a policy over fixed evaluation episodes (simulation only)."""
import numpy as np

from fedzo.edge.policy.rollout import run_episode


def evaluate(task, policy, reset_seeds) -> np.ndarray:
    """The true return of each evaluation episode, in seed order."""
    return np.array([run_episode(task, policy, seed)[0] for seed in reset_seeds])


def summarise(returns) -> dict:
    """Mean, spread and count of a set of returns, as plain floats for JSON."""
    returns = np.asarray(returns, float)
    return {"mean": float(returns.mean()), "std": float(returns.std()),
            "min": float(returns.min()), "max": float(returns.max()), "episodes": int(returns.size)}
