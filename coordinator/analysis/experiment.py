"""`fedzo experiment`: a grid of runs at equal trajectory budgets, in a process pool.

An experiment file (JSON) names the runs:

    {
      "base":     {RunConfig fields shared by every run},
      "variants": [{"label": "Par-S2ZPO K=5", RunConfig fields...}, ...],
      "grid":     {"task": ["hopper", "swimmer"], "agents": [1, 5]},   (optional)
      "seeds":    [0, 1, 2],
      "budget_episodes": 800,         (trajectories per run; rounds follow)
      "null_control": true,           (optional: true, or a list of variant labels)
      "task_overrides": {"hopper": {"alpha": 0.001}},   (optional: per-task settings, e.g. tuned)
      "more_seeds": [{"variants": ["Par K=5"], "grid": {"task": ["hopper"]}, "seeds": [10, 11]}],
                                      (optional: further seeds for some series)
      "full_scale": {overrides applied with --full-scale}              (optional)
    }

Every variant is crossed with the grid (a grid key a variant sets itself is
not varied for that variant) and with the seeds. A cell's settings are the
base, then its grid values, then `task_overrides` for its task, then its
variant's own. Each cell gets
rounds = budget_episodes // episodes per round, so all algorithms and K spend
the same number of trajectories. With `null_control`, every variant (or
the listed ones) also runs as "<label> null": the same cells with coin-flip
votes (preference "coin"), so each method's gain can be set beside a random
walk of the same step sizes, paired by seed.

Cells run in-process (no network: byte counts are those of the protocol
frames) in a pool of worker processes; a cell whose summary.json exists is
skipped and a cell with a checkpoint is resumed, so an interrupted experiment
picks up where it stopped. A finished cell needs only config.json,
summary.json and metrics.jsonl, so a long grid can be finished in pieces:
commit the finished cells under experiments/results/NAME/ (checkpoints are
ignored by git) and run the same command with --out there later. Each cell's
summary records its CPU seconds; COMPUTE_FILE keeps one line per session of
the grid (cells run, CPU seconds, workers, wall time), rewritten after every
cell so that a grid stopped part-way keeps the record of what it did.
"""
import copy
import itertools
import json
import multiprocessing
import os
import re
import resource
import time
from pathlib import Path

from fedzo.coordinator.run.folder import SUMMARY
from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.inproc import run_inproc
from fedzo.firmware_sim.behaviour import Behaviour, BehaviourError, simulated_agents
from fedzo.edge.learning.config import ConfigError, RunConfig
from fedzo.edge.tasks import TASK_NAMES, task_class

EXPERIMENT_FILE = "experiment.json"
COMPUTE_FILE = "compute.jsonl"
NULL_SUFFIX = " null"      # the label of a variant's null-control twin


def slug(text: str) -> str:
    """A folder-safe version of a label."""
    return re.sub(r"[^A-Za-z0-9=.+-]+", "_", text).strip("_")


def load_experiment(path, full_scale=False) -> dict:
    """Read and check an experiment file; a clear error on anything wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no experiment file at {path}")
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    known = {"base", "variants", "grid", "seeds", "budget_episodes", "full_scale", "name", "notes",
             "null_control", "task_overrides", "more_seeds"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown experiment key(s) {', '.join(unknown)}")
    if full_scale:
        spec = merge(spec, spec.get("full_scale", {}))
    if not spec.get("variants"):
        raise ConfigError(f"{path}: 'variants' must list at least one run")
    if not isinstance(spec.get("budget_episodes"), int) or spec["budget_episodes"] < 1:
        raise ConfigError(f"{path}: 'budget_episodes' must be a positive integer")
    overrides = spec.get("task_overrides", {})
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
        raise ConfigError(f"{path}: 'task_overrides' must map task names to settings")
    runs = cells(spec)   # validates every cell's config
    # a built-in task, or a user's task (docs/tasks.md) that some cell runs
    known = set(TASK_NAMES) | {cell["config"].task for cell in runs}
    unknown_tasks = sorted(set(overrides) - known)
    if unknown_tasks:
        raise ConfigError(f"{path}: task_overrides names unknown task(s) {', '.join(unknown_tasks)}")
    return spec


def merge(spec: dict, overrides: dict) -> dict:
    """spec with overrides applied one level deep (dicts merged, others replaced)."""
    out = copy.deepcopy(spec)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key].update(value)
        else:
            out[key] = value
    return out


def with_null_controls(spec: dict) -> list:
    """The variants, each followed by its coin-flip twin where `null_control` asks for one."""
    wanted = spec.get("null_control", False)
    labels = [v.get("label") for v in spec["variants"]]
    if isinstance(wanted, list):
        missing = sorted(set(wanted) - set(labels))
        if missing:
            raise ConfigError(f"null_control names unknown variant(s): {', '.join(missing)}")
    elif not isinstance(wanted, bool):
        raise ConfigError(f"null_control must be true, false or a list of variant labels, got {wanted!r}")
    out = []
    for variant in spec["variants"]:
        out.append(variant)
        if wanted is True or (isinstance(wanted, list) and variant.get("label") in wanted):
            if not variant.get("label"):
                raise ConfigError("a variant with a null control needs a label")
            out.append({**variant, "label": variant["label"] + NULL_SUFFIX, "preference": "coin"})
    return out


def cells(spec: dict) -> list:
    """Every run of the experiment: dicts with label, folder and RunConfig."""
    variants = with_null_controls(spec)
    out = _cells_of(spec, variants, spec.get("grid", {}), spec.get("seeds", [0]))
    folders = {cell["folder"] for cell in out}
    for extra in more_seeds(spec, variants):
        for cell in _cells_of(spec, extra["variants"], extra["grid"], extra["seeds"]):
            if cell["folder"] not in folders:
                folders.add(cell["folder"])
                out.append(cell)
    return out


def more_seeds(spec: dict, variants: list) -> list:
    """The experiment's `more_seeds` entries, checked: each gives some variants (their null
    twins included), at some of the grid's values, further seeds, so that a series a claim
    needs decided gets them without the whole grid paying for them. Cells are named as the
    grid's own, so the report pairs them with the rest."""
    entries = spec.get("more_seeds", [])
    if not isinstance(entries, list):
        raise ConfigError("more_seeds must be a list of {variants, grid, seeds} entries")
    grid, out, known = spec.get("grid", {}), [], {v.get("label") for v in variants}
    for n, entry in enumerate(entries):
        where = f"more_seeds[{n}]"
        if not isinstance(entry, dict) or set(entry) - {"variants", "grid", "seeds"}:
            raise ConfigError(f"{where} must be an object with variants, grid (optional) and seeds")
        labels = entry.get("variants")
        if not isinstance(labels, list) or not labels or not set(labels) <= known:
            raise ConfigError(f"{where}: variants must list labels of the experiment's variants, got {labels!r}")
        sub = entry.get("grid", {})
        if not isinstance(sub, dict) or any(k not in grid or not isinstance(v, list) or not set(v) <= set(grid[k])
                                            for k, v in sub.items()):
            raise ConfigError(f"{where}: grid must give some of the experiment's grid values, got {sub!r}")
        seeds = entry.get("seeds")
        if not isinstance(seeds, list) or not seeds or not all(isinstance(x, int) and not isinstance(x, bool)
                                                               and x >= 0 for x in seeds):
            raise ConfigError(f"{where}: seeds must be a list of whole numbers, got {seeds!r}")
        chosen = [v for v in variants if v.get("label") in labels
                  or (v.get("label", "").endswith(NULL_SUFFIX) and v["label"][:-len(NULL_SUFFIX)] in labels)]
        out.append({"variants": chosen, "grid": {**grid, **sub}, "seeds": seeds})
    return out


def _cells_of(spec: dict, variants: list, grid: dict, seeds: list) -> list:
    """The cells of these variants over this grid and these seeds."""
    out = []
    for variant in variants:
        variant = dict(variant)
        label = variant.pop("label", None) or json.dumps(variant, sort_keys=True)
        # Simulated liars and sleepers (firmware_sim/behaviour.py): how the agents act, not a run setting.
        behaviour = variant.pop("behaviour", "")
        try:
            Behaviour.parse(behaviour)
        except (BehaviourError, AttributeError) as exc:
            raise ConfigError(f"{label}: behaviour {behaviour!r}: {exc}") from None
        keys = [k for k in grid if k not in variant]
        for values in itertools.product(*(grid[k] for k in keys)):
            for seed in seeds:
                fields = {**spec.get("base", {}), **dict(zip(keys, values))}
                task = variant.get("task", fields.get("task", "hopper"))
                fields.update({**spec.get("task_overrides", {}).get(task, {}), **variant, "seed": seed})
                probe = RunConfig.from_dict({**fields, "rounds": 1})
                rounds = spec["budget_episodes"] // probe.episodes_per_round
                if rounds < 1:
                    raise ConfigError(f"{label}: budget_episodes {spec['budget_episodes']} is below one "
                                      f"round ({probe.episodes_per_round} episodes)")
                config = RunConfig.from_dict({**fields, "rounds": rounds})
                if config.preference == "human":     # a grid runs unattended: no one would answer
                    raise ConfigError(f"{label}: an experiment cannot ask a person (preference human); "
                                      f"use fedzo simulate --human")
                grid_part = "-".join(f"{k}={v}" for k, v in zip(keys, values))
                folder = "/".join(slug(p) for p in (label, grid_part, f"seed-{seed}") if p)
                cell = {"label": label, "grid": dict(zip(keys, values)), "folder": folder, "config": config}
                if behaviour:
                    cell["behaviour"] = behaviour
                out.append(cell)
    return out


def seed_major(todo: list) -> list:
    """The cells, first seed first: a grid stopped part-way has every series at the same
    number of seeds (paired comparisons need the same seeds on both sides)."""
    seeds = sorted({cell["config"].seed for cell in todo})
    return sorted(todo, key=lambda cell: seeds.index(cell["config"].seed))   # stable: variant order kept


def run_cell(out_dir: str, cell: dict) -> tuple:
    """Run one cell (resuming from its checkpoint if any): (summary, whether it ran now)."""
    folder = Path(out_dir) / cell["folder"]
    summary_path = folder / SUMMARY
    if summary_path.exists():
        return json.loads(summary_path.read_text()), False
    resume = (folder / "checkpoint.npz").exists()
    config = cell["config"]
    cpu_before = _cpu_seconds()
    # No per-run plots: the report draws the grid's curves, and committed cells stay small.
    run = Run(config, folder, resume=resume, log=lambda *a: None, plots=False)
    behaviour = Behaviour.parse(cell.get("behaviour", ""))
    agents = simulated_agents(config.agents, behaviour, log=lambda *a: None, task=config.task)
    summary = run_inproc(run, agents, os.urandom(32), workers=1, log=lambda *a: None)
    if behaviour.active:
        summary["behaviour"] = behaviour.as_dict()
    summary["cpu_seconds"] = round(_cpu_seconds() - cpu_before, 2)   # this session's share if resumed
    run.folder.write_json(SUMMARY, summary)
    return summary, True


def _cpu_seconds() -> float:
    """CPU time of this process so far (user + system); a cell runs in its own process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _run_cell_job(args):
    """(folder, summary or None, ran now, seconds, error text or None): a failing cell does not stop the rest."""
    out_dir, cell = args
    started = time.monotonic()
    try:
        summary, ran = run_cell(out_dir, cell)
        return cell["folder"], summary, ran, time.monotonic() - started, None
    except Exception as exc:
        return cell["folder"], None, True, time.monotonic() - started, f"{type(exc).__name__}: {exc}"


class _ComputeRecord:
    """compute.jsonl: the earlier sessions' lines, then this session's, rewritten as it grows."""

    def __init__(self, path: Path):
        self.path = path
        self.earlier = path.read_text() if path.exists() else ""
        if self.earlier and not self.earlier.endswith("\n"):
            self.earlier += "\n"

    def write(self, session: dict):
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(self.earlier + json.dumps(session, sort_keys=True) + "\n")
        os.replace(partial, self.path)   # never a torn file, even if killed mid-write


class ExperimentFailed(RuntimeError):
    """Some cells failed; the others finished (re-run to retry the failed ones)."""


def run_experiment(spec: dict, out_dir, workers=None, log=print) -> list:
    """Run every cell (skipping finished ones); returns (folder, summary) pairs.

    Raises ExperimentFailed after all cells ran if any of them failed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / EXPERIMENT_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True))
    todo = seed_major(cells(spec))
    # Import every task module now, before the pool forks: a module a cell
    # imported lazily would be read from disk mid-experiment, and an edit
    # made meanwhile would give cells different code.
    for name in TASK_NAMES:
        task_class(name)
    workers = workers or os.cpu_count() or 1
    log(f"experiment: {len(todo)} runs in {out_dir}, {workers} worker processes")
    results, failures = [], []
    session = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "workers": workers, "cores": os.cpu_count(),
               "cells_run": 0, "cpu_seconds": 0.0}
    started = time.monotonic()
    compute = _ComputeRecord(out_dir / COMPUTE_FILE)
    busy = []     # seconds of the cells run in this session
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers, maxtasksperchild=1) as pool:
        jobs = [(str(out_dir), cell) for cell in todo]
        for i, (folder, summary, ran, seconds, error) in enumerate(pool.imap_unordered(_run_cell_job, jobs), 1):
            if error:
                log(f"[{i}/{len(todo)}] {folder}: FAILED: {error}")
                failures.append(f"{folder}: {error}")
                continue
            if ran:
                busy.append(seconds)
            left = ""
            if busy:   # cells still to run x the mean cell time, spread over the workers
                left = f", ~{(len(todo) - i) * sum(busy) / len(busy) / workers / 60:.0f} min left"
            log(f"[{i}/{len(todo)}] {folder}: return {summary['return_initial']:.1f} -> "
                f"{summary['return_final']:.1f} ({seconds:.0f} s{left})")
            results.append((folder, summary))
            if ran:
                session["cells_run"] += 1
                session["cpu_seconds"] = round(session["cpu_seconds"] + summary["cpu_seconds"], 2)
                session["wall_seconds"] = round(time.monotonic() - started, 1)
                compute.write(session)    # after every cell: a grid stopped part-way keeps its record
    if failures:
        raise ExperimentFailed(f"{len(failures)} of {len(todo)} runs failed:\n" + "\n".join(failures))
    return results
