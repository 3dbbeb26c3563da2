"""A run's trained theta as an actor file (`fedzo export`), the final one or a given round's.

The final theta is the checkpoint's. An earlier round's is rebuilt, not stored:
in Par-S2ZPO every replica's theta after round r is theta_0 moved by the votes of
rounds 0..r (DESIGN.md §2), and metrics.jsonl records those votes and the hash
theta had after each round, so the rebuild is checked bit for bit. FedAvg's
average is not recorded, so only its final theta can be exported.

The actor keeps the starting actor's observation normalisation and hidden sizes
(fine-tuning changes neither) and holds theta dequantised to float32, which is
exact for the int16 store (16 significant bits fit float32's 24). Its `info`
records where it came from, including the store format: a new run that starts
from it with `frac_bits` set to that value starts from exactly these bits.
"""
from pathlib import Path

from fedzo.coordinator.run.folder import RunFolder
from fedzo.coordinator.run.trained import load_trained
from fedzo.edge.learning.algorithm import apply_par_update, initial_store, load_actor
from fedzo.edge.policy.mlp import Actor


def trained_actor(folder, round_: int | None = None) -> Actor:
    """The actor holding theta after round `round_` of the run in `folder` (None: the last
    checkpoint). ValueError (one line naming the file or the round) when it cannot be had."""
    folder = Path(folder)
    config, store, next_round = load_trained(folder)
    start = load_actor(config)
    if store.d != start.theta.size:
        raise ValueError(f"{folder}: the checkpoint holds {store.d} parameters, the run's actor "
                         f"has {start.theta.size}")
    if round_ is not None and round_ != next_round - 1:
        store = _rebuild(folder, config, start, round_, next_round)
    done = next_round if round_ is None else round_ + 1
    info = {"exported_from": str(folder), "rounds_done": done, "theta_hash": store.digest().hex(),
            "store": {"dtype": store.fmt.dtype.name, "frac_bits": store.fmt.frac_bits},
            "algo": config.algo, "seed": config.seed,
            "start_actor": config.actor or f"the packaged {config.task} actor"}
    return Actor(task=start.task, obs_dim=start.obs_dim, act_dim=start.act_dim, theta=store.to_float(),
                 obs_mean=start.obs_mean, obs_std=start.obs_std, hidden=start.hidden, info=info)


def _rebuild(folder: Path, config, start: Actor, round_: int, next_round: int):
    """theta after round `round_`, replayed from theta_0 with the recorded votes."""
    if not 0 <= round_ < next_round:
        raise ValueError(f"{folder}: round {round_} is not one of the run's finished rounds "
                         f"(0 to {next_round - 1})")
    if config.algo != "par-s2zpo":
        raise ValueError(f"{folder}: a {config.algo} run records no averaged models, so only its "
                         f"final theta (round {next_round - 1}) can be exported")
    records = {r["round"]: r for r in RunFolder(folder, create=False).metrics()}
    store = initial_store(config, start)
    alpha_steps = store.fmt.steps(config.alpha)
    for t in range(round_ + 1):
        record = records.get(t)
        if record is None or not isinstance(record.get("votes"), list):
            raise ValueError(f"{folder}: metrics.jsonl has no votes for round {t}")
        try:
            apply_par_update(store, config.seed, config.block_count, t, record["votes"], alpha_steps,
                             config.perturbation)
        except ValueError as exc:
            raise ValueError(f"{folder}: metrics.jsonl, round {t}: {exc}") from None
    if store.digest().hex() != records[round_].get("theta_hash"):
        raise ValueError(f"{folder}: theta rebuilt from the votes of rounds 0 to {round_} does not match "
                         f"the hash metrics.jsonl records for round {round_}")
    return store
