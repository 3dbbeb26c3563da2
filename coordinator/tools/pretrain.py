"""Pretraining the starting actors on the true reward with ARS (written here).

Augmented Random Search, version V2-t (Mania, Guy and Recht, 2018), applied to
fedzo's own tanh MLP policy (64-64 unless told otherwise) so that the actor fine-tuned later is
exactly the network that was pretrained:

    for each iteration:
        draw n directions delta_i ~ N(0, I)
        r+_i, r-_i = return(theta + nu delta_i), return(theta - nu delta_i)
        keep the b directions with the largest max(r+_i, r-_i)
        theta += step / (b * std of the kept returns) * sum (r+_i - r-_i) delta_i
        update the observation mean/std from every state seen

The alive bonus of hopper and walker2d is subtracted during training (it
rewards standing still); evaluation uses the true reward. Directions are
regenerated in the worker processes from their seeds, so only seeds and
returns cross process boundaries.
"""
import multiprocessing
import time
from dataclasses import dataclass

import numpy as np

from fedzo.edge.learning.layout import DEFAULT_HIDDEN, mlp_layers, mlp_param_count
from fedzo.edge.policy.mlp import Actor, MLPPolicy
from fedzo.edge.tasks import make
from fedzo.edge.tasks.plugins import task_name as task_name_of

ALIVE_BONUS = {"hopper": 1.0, "walker2d": 1.0, "halfcheetah": 0.0, "swimmer": 0.0}


def alive_bonus(spec: str, task) -> float:
    """The per-step alive bonus training subtracts: the built-in table, else the task's
    optional `alive_bonus` (an MJCF task's alive weight)."""
    return ALIVE_BONUS[spec] if spec in ALIVE_BONUS else float(getattr(task, "alive_bonus", 0.0))


@dataclass
class ARSSettings:
    """ARS hyperparameters (defaults as used for the shipped actors)."""

    iterations: int = 60
    directions: int = 16        # n
    top: int = 8                # b
    step: float = 0.02
    noise: float = 0.03         # nu
    seed: int = 0
    workers: int = 2
    hidden: tuple = DEFAULT_HIDDEN   # the policy's hidden tanh layers


def initial_theta(obs_dim, act_dim, rng, hidden=DEFAULT_HIDDEN) -> np.ndarray:
    """Small random weights (scaled by fan-in), zero biases, a near-zero output layer."""
    theta = np.zeros(mlp_param_count(obs_dim, act_dim, hidden), np.float64)
    layers = mlp_layers(obs_dim, act_dim, hidden)
    for i, layer in enumerate(layers):
        scale = 0.01 if i == len(layers) - 1 else 1.0 / np.sqrt(layer.inputs)
        theta[layer.weight_start:layer.bias_start] = rng.normal(0, scale, layer.inputs * layer.outputs)
    return theta


class _Worker:
    """One process's task and policy; evaluates perturbed parameters."""

    def __init__(self, task_name, hidden):
        self.task = make(task_name)
        low, high = self.task.model.actuator_ctrlrange.T
        self.policy = MLPPolicy(self.task.obs_dim, self.task.act_dim, hidden, act_low=low, act_high=high)
        self.shift = alive_bonus(task_name, self.task)

    def episode(self, theta, mean, std, reset_seed):
        """(shifted return, states sum, states sum of squares, steps)."""
        self.policy.load(theta)
        self.policy.set_normalisation(mean, std)
        obs = self.task.reset(reset_seed)
        total, steps = 0.0, 0
        s1 = np.zeros(self.task.obs_dim)
        s2 = np.zeros(self.task.obs_dim)
        while True:
            s1 += obs
            s2 += obs * obs
            obs, reward, terminated, truncated = self.task.step(self.policy.act(obs))
            total += reward - self.shift
            steps += 1
            if terminated or truncated:
                return total, s1, s2, steps


_worker = None


def _init(task_name, hidden):
    global _worker
    _worker = _Worker(task_name, hidden)


def _evaluate_direction(args):
    theta, mean, std, direction_seed, noise, reset_seed = args
    delta = np.random.default_rng(direction_seed).standard_normal(theta.size)
    plus = _worker.episode(theta + noise * delta, mean, std, reset_seed)
    minus = _worker.episode(theta - noise * delta, mean, std, reset_seed)
    return plus, minus


class RunningStats:
    """Mean and std of observations seen so far (ARS V2's state normalisation)."""

    def __init__(self, dim):
        self.count, self.s1, self.s2 = 0, np.zeros(dim), np.zeros(dim)

    def add(self, s1, s2, n):
        self.s1 += s1
        self.s2 += s2
        self.count += n

    def mean_std(self):
        if self.count < 2:
            return np.zeros_like(self.s1), np.ones_like(self.s1)
        mean = self.s1 / self.count
        var = np.maximum(self.s2 / self.count - mean * mean, 1e-8)
        return mean, np.sqrt(var)


def pretrain(task_name: str, settings: ARSSettings, log=print) -> Actor:
    """Run ARS on a task; returns the actor with its settings and timings in `info`."""
    probe = make(task_name)
    rng = np.random.default_rng(settings.seed)
    theta = initial_theta(probe.obs_dim, probe.act_dim, rng, settings.hidden)
    stats = RunningStats(probe.obs_dim)
    started = time.perf_counter()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(settings.workers, initializer=_init, initargs=(task_name, settings.hidden)) as pool:
        for iteration in range(settings.iterations):
            mean, std = stats.mean_std()
            seeds = rng.integers(0, 2**31, size=(settings.directions, 2))
            jobs = [(theta, mean, std, int(ds), settings.noise, int(rs)) for ds, rs in seeds]
            results = pool.map(_evaluate_direction, jobs)
            r_plus = np.array([p[0] for p, _ in results])
            r_minus = np.array([m[0] for _, m in results])
            for plus, minus in results:
                stats.add(plus[1] + minus[1], plus[2] + minus[2], plus[3] + minus[3])
            order = np.argsort(-np.maximum(r_plus, r_minus))[:settings.top]
            sigma = np.concatenate([r_plus[order], r_minus[order]]).std() or 1.0
            step = np.zeros_like(theta)
            for i in order:
                delta = np.random.default_rng(int(seeds[i, 0])).standard_normal(theta.size)
                step += (r_plus[i] - r_minus[i]) * delta
            theta += settings.step / (settings.top * sigma) * step
            log(f"pretrain {task_name} iter {iteration + 1}/{settings.iterations}: "
                f"mean shifted return {np.mean(np.concatenate([r_plus, r_minus])):.1f}, "
                f"{time.perf_counter() - started:.0f} s")
    mean, std = stats.mean_std()
    info = {"algorithm": "ARS V2-t", "iterations": settings.iterations, "directions": settings.directions,
            "top": settings.top, "step": settings.step, "noise": settings.noise, "seed": settings.seed,
            "workers": settings.workers, "hidden": list(settings.hidden), "seconds": round(time.perf_counter() - started, 1)}
    return Actor(task_name_of(task_name), probe.obs_dim, probe.act_dim, theta.astype(np.float32), mean, std,
                 hidden=tuple(settings.hidden), info=info)
