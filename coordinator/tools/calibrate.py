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
from fedzo.edge.learning.preference import link_probability
from fedzo.edge.policy.rollout import run_batch
from fedzo.edge.tasks import make

SCALE_FACTOR = 5.0


class _Probe:
    """A theta and its policy, for measuring theta + mu v against what an agent compares
    it with: theta itself (the paper), or theta - mu v (the symmetric comparison).

    The theta is the starting actor's, or `store` (e.g. a run's checkpoint)."""

    def __init__(self, config: RunConfig, store=None):
        self.config = config
        actor = load_actor(config)
        self.task = make(config.task)
        self.task.max_episode_steps = min(config.horizon, self.task.max_episode_steps)
        self.store = store if store is not None else initial_store(config, actor)
        low, high = self.task.model.actuator_ctrlrange.T
        self.policy = actor.policy(low, high)
        self.policy.refresh(self.store)
        self.mu_steps = self.store.fmt.steps(config.mu)

    def paired(self, k: int, round_: int, reset_seeds) -> tuple:
        """Mean return of the baseline and of theta + mu v_{round,k}, from the same reset seeds."""
        baseline_steps = -self.mu_steps if self.config.comparison == "symmetric" else 0
        return (self._perturbed_return(k, round_, reset_seeds, baseline_steps),
                self._perturbed_return(k, round_, reset_seeds, self.mu_steps))

    def _perturbed_return(self, k, round_, reset_seeds, steps) -> float:
        """Mean return under theta + steps v_{round,k} on block k; theta is restored exactly after."""
        config, store, policy = self.config, self.store, self.policy
        if steps == 0:
            return run_batch(self.task, policy, reset_seeds).mean_return
        start, stop = block_bounds(store.d, config.block_count, k)
        saved = store.scratch(start, stop)
        perturbation.perturb(store, config.perturbation, start, stop, config.seed,
                             streams.block_stream(k), round_, steps, saved)
        policy.refresh(store, start, stop)
        result = run_batch(self.task, policy, reset_seeds).mean_return
        store.restore(start, stop, saved)
        policy.refresh(store, start, stop)
        return result


def return_differences(task_name: str, samples=40, agents=5, config=None) -> np.ndarray:
    """|R(theta + mu v) - R(theta)| for `samples` random (block, round) pairs."""
    config = config or RunConfig(task=task_name, agents=agents)
    probe = _Probe(config)
    diffs = []
    for sample in range(samples):
        k, round_ = sample % config.block_count, sample // config.block_count
        base, cand = probe.paired(k, round_, streams.reset_seeds(config.seed, k, round_, config.batch))
        diffs.append(abs(cand - base))
    return np.array(diffs)


def vote_accuracy(config: RunConfig, samples=40, reference_episodes=16, store=None) -> dict:
    """How often what an agent is shown points the way a better estimate does.

    For `samples` (block, round) pairs: the return difference of theta + mu v
    over its baseline (theta, or theta - mu v with the symmetric comparison)
    on the D episodes of each of the agent's N comparisons (`comparisons`; its
    vote is the sign of their sum), and on `reference_episodes` other episodes
    (the reference direction). Reports how often the vote's shown differences
    (the majority of their signs) have the reference's sign, how often the
    panel (its link and scale c) would vote that way, and the sizes of both
    differences beside c: where the agreement is near 0.5, votes are coin flips
    whatever the panel. theta is the starting actor's, or `store` (a trained theta).
    """
    probe = _Probe(config, store)
    n, d = config.comparisons, config.batch
    shown, reference, agree, panel_agree = [], [], 0, 0.0
    for sample in range(samples):
        k, round_ = sample % config.block_count, sample // config.block_count
        seeds = streams.reset_seeds(config.seed, k, round_, n * d + reference_episodes)
        differences = []
        for c in range(n):
            base, cand = probe.paired(k, round_, seeds[c * d:(c + 1) * d])
            differences.append(cand - base)
        ref_base, ref_cand = probe.paired(k, round_, seeds[n * d:])
        r = ref_cand - ref_base
        shown += differences
        reference.append(r)
        signs = sum(int(np.sign(x)) for x in differences)
        agree += float(np.sign(signs) == np.sign(r))      # a tie of signs agrees with no direction
        p_for = [panel_majority_probability(link_probability(config.panel_link, x, config.scale),
                                            config.panel_reviewers) for x in differences]
        p_vote = vote_probability(p_for)                # the agent's vote favours the candidate
        panel_agree += p_vote if r > 0 else 1.0 - p_vote
    shown, reference = np.abs(shown), np.abs(reference)
    return {"task": config.task, "horizon": config.horizon, "batch": config.batch,
            "comparisons": config.comparisons, "mu": config.mu,
            "comparison": config.comparison, "samples": samples,
            "reference_episodes": reference_episodes, "scale": config.scale,
            "sign_agreement": agree / samples, "panel_agreement": panel_agree / samples,
            "median_abs_diff_shown": float(np.median(shown)),
            "median_abs_diff_reference": float(np.median(reference))}


def vote_probability(p_for: list) -> float:
    """The chance that the sign of the sum of N panel votes favours the candidate, each
    vote favouring it with its own probability (a tie, with even N, counts half)."""
    dist = np.zeros(len(p_for) + 1)      # dist[j]: j votes for the candidate so far
    dist[0] = 1.0
    for p in p_for:
        dist[1:] = dist[1:] * (1 - p) + dist[:-1] * p
        dist[0] *= 1 - p
    n = len(p_for)
    return float(sum(dist[j] for j in range(n + 1) if 2 * j > n) + 0.5 * sum(dist[j] for j in range(n + 1)
                                                                             if 2 * j == n))


def panel_majority_probability(p: float, reviewers: int) -> float:
    """P(a majority of `reviewers` independent reviewers, each for with probability p, is for)."""
    from math import comb
    return float(sum(comb(reviewers, j) * p ** j * (1 - p) ** (reviewers - j)
                     for j in range(reviewers // 2 + 1, reviewers + 1)))


def calibrate(task_name: str, samples=40, actor: str = "", hidden: str = "64,64", mu: float | None = None) -> dict:
    """The measured differences and the scale c they give (a user's task names its actor,
    and its hidden sizes and mu where they are not the defaults)."""
    config = RunConfig(task=task_name, agents=5, actor=actor, hidden=hidden,
                       **({} if mu is None else {"mu": mu}))
    diffs = return_differences(task_name, samples, config=config)
    median = float(np.median(diffs))
    return {"task": task_name, "samples": samples, "median_abs_diff": median,
            "p25": float(np.percentile(diffs, 25)), "p75": float(np.percentile(diffs, 75)),
            "scale": round(SCALE_FACTOR * median, 3)}
