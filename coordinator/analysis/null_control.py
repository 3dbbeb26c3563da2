"""Each method's gain beside its null control, paired by seed.

The null control of a series is the same runs (same config, same seeds) with
coin-flip votes (`preference = "coin"`): a random walk with the method's own
step sizes. A method has learned something only where its gain beats that
walk's, seed for seed. Runs are paired by their configs: a null run pairs
with every run whose config differs from it only in settings a coin never
reads (COIN_BLIND: the preference source, the panel, the comparison).
"""
import math
from dataclasses import fields

from fedzo.coordinator.analysis.report import mean_ci
from fedzo.edge.learning.config import RunConfig

NULL_PREFERENCE = "coin"


def gain(summary: dict) -> float:
    """The run's gain in true return at its evaluation horizon (final - initial, same episodes)."""
    return summary["return_final"] - summary["return_initial"]


def gain_at_training_horizon(summary: dict):
    """The gain at the training horizon when the run trained at a shorter one, else None."""
    if "return_final_train_horizon" not in summary:
        return None
    return summary["return_final_train_horizon"] - summary["return_initial_train_horizon"]


def eval_horizon(run: dict) -> int:
    """The horizon a run's returns were evaluated at (runs before full-horizon evaluation
    were evaluated at their training horizon)."""
    return run["summary"].get("eval_horizon") or run["config"].get("horizon", 1000)


# Settings a coin never reads: its votes ignore both batches, so a null run's theta
# path is the same whatever these say (tests/coordinator/analysis/test_null_control.py
# checks it bit for bit). One null run is therefore the twin of every run that differs
# from it only here, e.g. the symmetric comparison pairs with the one-sided null.
COIN_BLIND = ("preference", "comparison", "panel_link", "panel_reviewers", "panel_scale")


# Every config field at its default: a run folder written before a field existed says
# nothing of it, and ran with its default (e.g. `hidden` before users could set it).
CONFIG_DEFAULTS = {f.name: f.default for f in fields(RunConfig)}


def is_null(run: dict) -> bool:
    """Whether a run (its config, or for a run known only by its summary, the summary) is a
    null control: coin-flip votes."""
    settings = {**run.get("summary", {}), **run.get("config", {})}
    return settings.get("preference", "panel") == NULL_PREFERENCE


def _pairing_key(config: dict) -> tuple:
    """What a run and its null twin share: the whole config (missing fields at their
    defaults) but what a coin cannot see."""
    full = {**CONFIG_DEFAULTS, **config}
    return tuple(sorted((k, repr(v)) for k, v in full.items() if k not in COIN_BLIND))


def null_pairs(runs: list, series_of) -> dict:
    """series -> list of (run, its null twin), for every series whose runs have twins.

    `series_of(run)` names a run's series (the report's series key)."""
    nulls = {_pairing_key(r["config"]): r for r in runs if is_null(r)}
    out = {}
    for run in runs:
        if is_null(run):
            continue
        twin = nulls.get(_pairing_key(run["config"]))
        if twin is not None:
            out.setdefault(series_of(run), []).append((run, twin))
    return dict(sorted(out.items()))


def verdict(difference: tuple) -> str:
    """How a paired difference's 95 % interval (mean, half-width) sits against 0."""
    mean, half = difference
    if math.isnan(mean) or half == 0:
        return "undecided (too few seeds)"
    if mean - half > 0:
        return "beats the null"
    if mean + half < 0:
        return "below the null"
    return "not distinguishable from the null"


def rows(runs: list, series_of) -> list:
    """One row per series with a null control: gains, the null's, and the paired difference."""
    out = []
    for series, pairs in null_pairs(runs, series_of).items():
        gains = [gain(run["summary"]) for run, _ in pairs]
        null_gains = [gain(twin["summary"]) for _, twin in pairs]
        difference = mean_ci([g - n for g, n in zip(gains, null_gains)])
        short = [(gain_at_training_horizon(r["summary"]), gain_at_training_horizon(t["summary"])) for r, t in pairs]
        short = [g - n for g, n in short if g is not None and n is not None]
        out.append({"series": series, "seeds": len(pairs), "horizon": eval_horizon(pairs[0][0]),
                    "train_horizon": pairs[0][0]["config"].get("horizon"),
                    "gain": mean_ci(gains), "null_gain": mean_ci(null_gains),
                    "difference": difference, "verdict": verdict(difference),
                    "difference_train_horizon": mean_ci(short) if short else None})
    return out


def markdown(runs: list, series_of) -> str:
    """The 'gain beside the null' table, or '' when no run has a null twin."""
    table = rows(runs, series_of)
    if not table:
        return ""
    truncated = any(r["difference_train_horizon"] for r in table)
    columns = ["series", "seeds", "eval horizon", "gain", "null gain", "gain - null (paired)", "verdict"]
    if truncated:
        columns.append("gain - null at the training horizon")
    lines = ["### Gain beside the null control", "",
             "Each series' gain in true return (final - initial, at the evaluation horizon) beside the "
             "same runs with coin-flip votes, paired by seed; intervals are 95 % t-intervals over seeds.",
             "", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for r in table:
        cells = [r["series"], r["seeds"], r["horizon"], format_interval(r["gain"]), format_interval(r["null_gain"]),
                 format_interval(r["difference"]), r["verdict"]]
        if truncated:
            short = r["difference_train_horizon"]
            cells.append("-" if short is None else f"{format_interval(short)} at {r['train_horizon']} steps")
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def format_interval(stat) -> str:
    mean, half = stat
    return "-" if math.isnan(mean) else f"{mean:+.1f} ± {half:.1f}"
