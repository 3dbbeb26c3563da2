"""The algorithm's arithmetic, in one place: every replica calls these (DESIGN.md §2).

- `initial_store`: the starting actor, quantised into the fixed-point store.
- `agent_vote`: N comparison outcomes -> one vote in {-1, +1}.
- `apply_par_update`: step 5 of a Par-S2ZPO round, on any replica.
- `check_model`: an uploaded FedAvg model may count only if it is finite and
  inside the store's range (DECISIONS.md, "FedAvg's average and hostile models").
- `average_models`: the FedAvg-S2ZPO server step.
"""
from pathlib import Path

import numpy as np

from fedzo.edge.learning import perturbation, streams
from fedzo.edge.learning.fixedpoint import FixedPoint, ParameterStore
from fedzo.edge.learning.layout import format_hidden, partition
from fedzo.edge.policy.mlp import Actor
from fedzo.edge.tasks import TASK_NAMES
from fedzo.edge.tasks.plugins import task_name

ACTOR_DIR = Path(__file__).resolve().parent.parent / "policy" / "actors"


def actor_path(config) -> Path:
    """The starting actor's file: config.actor, or the packaged one for the task."""
    return Path(config.actor) if config.actor else ACTOR_DIR / f"{config.task}.npz"


def load_actor(config) -> Actor:
    """The starting actor, checked against the task and the run's hidden sizes.

    A user's task (a spec, not a built-in name) has no packaged actor, and an
    actor file records the task's name (`fedzo.edge.tasks.plugins.task_name`)."""
    if not config.actor and config.task not in TASK_NAMES:
        raise ValueError(f"task {config.task} has no packaged actor: set actor (fedzo pretrain --task "
                         f"{config.task} --out A.npz makes one)")
    actor = Actor.load(actor_path(config))
    expected = config.task if config.task in TASK_NAMES else task_name(config.task)
    if actor.task != expected:
        raise ValueError(f"{actor_path(config)} is an actor for {actor.task}, not {expected}")
    if actor.hidden != config.hidden_sizes:
        raise ValueError(f"{actor_path(config)} has hidden layers {format_hidden(actor.hidden)}, the run "
                         f"{config.hidden} (set hidden to {format_hidden(actor.hidden)}, or start from "
                         f"an actor of that size)")
    return actor


def store_format(config, theta) -> FixedPoint:
    """The fixed-point format of a run: the config's frac_bits, or the automatic one."""
    if config.frac_bits >= 0:
        return FixedPoint(np.dtype(config.store_dtype), config.frac_bits)
    return FixedPoint.for_values(theta, np.dtype(config.store_dtype))


def initial_store(config, actor: Actor) -> ParameterStore:
    """theta_0: the actor quantised with the run's format; identical on every replica."""
    return ParameterStore.from_float(actor.theta, store_format(config, actor.theta))


def starts_from_packaged_actor(fresh_join: bool, round_: int, config) -> bool:
    """Whether a joining agent builds theta itself from its packaged actor (then
    checks the Welcome's hash) instead of waiting for the coordinator's Sync.

    Both sides decide with this one rule: a fresh agent (holding no theta),
    joining at round 0 of a run that starts from the packaged actor.
    """
    return fresh_join and round_ == 0 and config.actor == ""


def agent_vote(outcome_sum: int, seed: int, agent: int, round_: int) -> int:
    """sign(sum of outcomes); a tie (N even) is broken by a bit of the seed stream."""
    if outcome_sum > 0:
        return 1
    if outcome_sum < 0:
        return -1
    return streams.tie_bit(seed, agent, round_)


def apply_par_update(store: ParameterStore, seed: int, agents: int, round_: int,
                     votes, alpha_steps: int, kind: str = "rademacher") -> int:
    """theta_{B_k} += alpha * vote_k * v_{t,k} for every block k; returns saturations."""
    if len(votes) != agents:
        raise ValueError(f"expected {agents} votes, got {len(votes)}")
    saturated = 0
    for k, ((start, stop), vote) in enumerate(zip(partition(store.d, agents), votes)):
        if vote not in (-1, 0, 1):
            raise ValueError(f"vote {vote!r} of block {k} is not -1, 0 or +1")
        if vote:
            saturated += perturbation.update(store, kind, start, stop, seed, streams.block_stream(k),
                                             round_, vote * alpha_steps)
    return saturated


class ModelRejected(ValueError):
    """An uploaded model that may not count: wrong size, not finite, or outside the store's range."""


def check_model(model: np.ndarray, fmt: FixedPoint, d: int) -> np.ndarray:
    """The model if it may count in an average, else ModelRejected saying why.

    Every honest agent uploads its store dequantised, so each coordinate lies
    in [min, max] of the store's format; anything outside (or NaN/inf) is a
    lying or broken agent, and one such model could otherwise saturate all
    of theta.
    """
    if model.size != d:
        raise ModelRejected(f"model of {model.size} parameters, expected {d}")
    if not np.all(np.isfinite(model)):
        raise ModelRejected(f"model has {int(np.count_nonzero(~np.isfinite(model)))} non-finite values")
    low, high = np.iinfo(fmt.dtype).min * fmt.lsb, fmt.max_value
    outside = np.count_nonzero((model < low) | (model > high))
    if outside:
        raise ModelRejected(f"model has {outside} values outside the store's range "
                            f"[{low:g}, {high:g}]")
    return model


def average_models(models) -> np.ndarray:
    """FedAvg's average of the received float32 models (None = not received).

    Summed in float64 in agent order, so every replica that averages the same
    models gets the same float32 bits.
    """
    received = [m for m in models if m is not None]
    if not received:
        raise ValueError("no model was received this round")
    total = np.zeros(received[0].size, np.float64)
    for model in received:
        total += model
    return (total / len(received)).astype(np.float32)


def fedavg_round_index(round_: int, local_steps: int, step: int) -> int:
    """The Philox round field of local step `step` of round `round_` (FedAvg)."""
    return round_ * local_steps + step
