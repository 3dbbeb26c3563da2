"""How the simulated panel's per-task scale c is chosen (`fedzo calibrate`).

For the task's starting actor, with the default perturbation size mu, K = 5
blocks and batches of D episodes from common reset seeds (exactly what an
agent compares), measure |R(theta + mu v) - R(theta)| over many random
(block, round) pairs. The scale is

    c = SCALE_FACTOR x median |Delta R|

so that a median-sized difference moves one reviewer's probability to
0.5 + 1/(2 SCALE_FACTOR) = 0.6 under the linear link: a panel of 101
reviewers then answers it correctly about 98 % of the time, while a
difference a fifth as large is answered correctly only about 66 % of the
time. The panel is informative but far from an oracle.
"""
import numpy as np

from fedzo.edge.learning import perturbation, streams
from fedzo.edge.learning.algorithm import initial_store, load_actor
from fedzo.edge.learning.config import RunConfig
from fedzo.edge.learning.layout import block_bounds
from fedzo.edge.policy.rollout import run_batch
from fedzo.edge.tasks import make

SCALE_FACTOR = 5.0


def return_differences(task_name: str, samples=40, agents=5, config=None) -> np.ndarray:
    """|R(theta + mu v) - R(theta)| for `samples` random (block, round) pairs."""
    config = config or RunConfig(task=task_name, agents=agents)
    actor = load_actor(config)
    task = make(task_name)
    task.max_episode_steps = config.horizon
    store = initial_store(config, actor)
    low, high = task.model.actuator_ctrlrange.T
    policy = actor.policy(low, high)
    policy.refresh(store)
    mu_steps = store.fmt.steps(config.mu)
    diffs = []
    for sample in range(samples):
        k, round_ = sample % agents, sample // agents
        start, stop = block_bounds(store.d, agents, k)
        seeds = streams.reset_seeds(config.seed, k, round_, config.batch)
        base = run_batch(task, policy, seeds).mean_return
        saved = store.scratch(start, stop)
        perturbation.perturb(store, config.perturbation, start, stop, config.seed,
                             streams.block_stream(k), round_, mu_steps, saved)
        policy.refresh(store, start, stop)
        cand = run_batch(task, policy, seeds).mean_return
        store.restore(start, stop, saved)
        policy.refresh(store, start, stop)
        diffs.append(abs(cand - base))
    return np.array(diffs)


def calibrate(task_name: str, samples=40) -> dict:
    """The measured differences and the scale c they give."""
    diffs = return_differences(task_name, samples)
    median = float(np.median(diffs))
    return {"task": task_name, "samples": samples, "median_abs_diff": median,
            "p25": float(np.percentile(diffs, 25)), "p75": float(np.percentile(diffs, 75)),
            "scale": round(SCALE_FACTOR * median, 3)}
