"""`fedzo bench ray [--json]`: what Ray costs here, against the local process pool and the in-process link.

Both measurements run in one invocation on one local Ray (this machine's CPUs), so the
ratios compare like with like on a machine whatever else it is doing:

- grid: the same small grid (GRID_CELLS cells of a few seconds) by the process pool and by
  Ray tasks, alternated GRID_REPEATS times, the best of each; the overhead per cell is the extra wall time times the cells run at once,
  divided by the cells (CPU-seconds of a slot lost per cell). Ray's start is timed apart:
  it is paid once per grid, not per cell.
- simulate: a run of SIM_AGENTS agents, in-process (threads) and in Ray actors (one per
  CPU); the round time is the median gap between successive rounds' records after round 0
  (which holds the joins). Both runs' theta hashes are printed: they must be equal.
"""
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from fedzo.coordinator.analysis.experiment import run_experiment
from fedzo.coordinator.cluster.connect import ray_session
from fedzo.coordinator.cluster.grid import run_experiment_ray
from fedzo.coordinator.cluster.ray_link import run_ray
from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.inproc import run_inproc
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.learning.config import RunConfig

GRID = {"base": {"task": "hopper", "batch": 1, "comparisons": 1, "eval_every": 0, "eval_episodes": 1},
        "budget_episodes": 16, "seeds": [0, 1, 2, 3],
        "variants": [{"label": "K=2", "agents": 2}, {"label": "K=1", "agents": 1}]}
GRID_CELLS = 8
GRID_REPEATS = 2          # each grid's best of this many (the machine may be shared)
SIM_AGENTS = 200
SIM = dict(task="hopper", rounds=4, batch=1, comparisons=1, eval_every=0, eval_episodes=1, horizon=200, seed=1)
QUIET = dict(log=lambda *a: None)


def run(log=print) -> list:
    """[grid record, simulate record] measured on a local Ray of this machine's CPUs."""
    cpus = os.cpu_count() or 1
    pool, on_ray, starts = [], [], []
    with tempfile.TemporaryDirectory(prefix="fedzo-bench-ray-") as tmp:
        tmp = Path(tmp)
        # Alternated, so a change in the machine's load hits both; the pool runs with no Ray
        # in this process (its forked workers would inherit Ray's threads and signal handlers).
        for repeat in range(GRID_REPEATS):
            log(f"grid {repeat + 1}/{GRID_REPEATS}: {GRID_CELLS} cells on the process pool ({cpus} workers) ...")
            pool.append(_timed(run_experiment, GRID, tmp / f"pool-{repeat}", workers=cpus, **QUIET))
            log(f"grid {repeat + 1}/{GRID_REPEATS}: the same cells as Ray tasks ...")
            started = time.monotonic()
            with ray_session(None, num_cpus=cpus, **QUIET):
                starts.append(time.monotonic() - started)
                on_ray.append(_timed(run_experiment_ray, GRID, tmp / f"ray-{repeat}", **QUIET))
        log(f"simulate: {SIM_AGENTS} agents, in-process ...")
        inproc = _simulate(tmp / "inproc", None)
        log(f"simulate: {SIM_AGENTS} agents in Ray actors ...")
        with ray_session(None, num_cpus=cpus, **QUIET) as ray:
            in_ray = _simulate(tmp / "actors", ray)
    ray_start_s = min(starts)
    pool_s, ray_s = min(pool), min(on_ray)
    grid = {"bench": "grid", "cells": GRID_CELLS, "slots": cpus, "repeats": GRID_REPEATS,
            "pool_s": round(pool_s, 2), "ray_s": round(ray_s, 2), "ray_start_s": round(ray_start_s, 2),
            "pool_all_s": [round(s, 2) for s in pool], "ray_all_s": [round(s, 2) for s in on_ray],
            "ray_over_pool": round(ray_s / pool_s, 3),
            "overhead_per_cell_s": round((ray_s - pool_s) * cpus / GRID_CELLS, 3),
            "pool_cell_s": round(pool_s * cpus / GRID_CELLS, 2)}
    sim = {"bench": "simulate", "agents": SIM_AGENTS, "cpus": cpus, "horizon": SIM["horizon"],
           "inproc_round_s": inproc["round_s"], "ray_round_s": in_ray["round_s"],
           "ray_over_inproc": round(in_ray["round_s"] / inproc["round_s"], 3),
           "same_theta": inproc["theta_hash"] == in_ray["theta_hash"],
           "same_bytes": inproc["bytes"] == in_ray["bytes"]}
    return [grid, sim]


def _timed(function, *args, **kwargs) -> float:
    """Seconds `function(*args, **kwargs)` took."""
    started = time.monotonic()
    function(*args, **kwargs)
    return time.monotonic() - started


def _simulate(folder, ray) -> dict:
    """One run of SIM_AGENTS agents (in-process without `ray`); its median round time, hash, bytes."""
    config = RunConfig(agents=SIM_AGENTS, **SIM)
    the_run = Run(config, folder, plots=False, **QUIET)
    key = os.urandom(32)
    if ray is None:
        summary = run_inproc(the_run, [AgentRuntime(task=config.task, **QUIET) for _ in range(SIM_AGENTS)], key,
                             **QUIET)
    else:
        summary = run_ray(ray, the_run, key, **QUIET)
    elapsed = [json.loads(line)["elapsed_s"] for line in (folder / "metrics.jsonl").read_text().splitlines()]
    gaps = [b - a for a, b in zip(elapsed, elapsed[1:])]
    return {"round_s": round(statistics.median(gaps), 2), "theta_hash": summary["theta_hash"],
            "bytes": (summary["bytes_up"], summary["bytes_down"])}


def format_table(records: list) -> str:
    """The records as the lines a person reads."""
    grid, sim = records
    return "\n".join([
        f"grid of {grid['cells']} cells, {grid['slots']} at a time (a cell takes ~{grid['pool_cell_s']} s "
        f"on the pool):",
        f"  process pool   {grid['pool_s']:8.2f} s   (best of {grid['pool_all_s']})",
        f"  Ray tasks      {grid['ray_s']:8.2f} s   (best of {grid['ray_all_s']}; {grid['ray_over_pool']:.2f}x the "
        f"pool; Ray's start, {grid['ray_start_s']:.1f} s, apart)",
        f"  overhead per cell on Ray: {grid['overhead_per_cell_s']:+.3f} s of a slot",
        f"simulation of {sim['agents']} agents, horizon {sim['horizon']}, {sim['cpus']} CPUs "
        f"(median round time after round 0):",
        f"  in-process     {sim['inproc_round_s']:8.2f} s per round",
        f"  Ray actors     {sim['ray_round_s']:8.2f} s per round   ({sim['ray_over_inproc']:.2f}x in-process)",
        f"  same theta hash: {'yes' if sim['same_theta'] else 'NO'}; same bytes: "
        f"{'yes' if sim['same_bytes'] else 'NO'}",
    ])
