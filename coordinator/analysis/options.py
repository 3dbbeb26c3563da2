"""Measured options beside the paper's algorithm, paired by seed.

Issue 10 asks for ways to make the votes less noisy (the symmetric comparison
of theta - mu v against theta + mu v, more comparisons per vote, more episodes
per batch), each reported as a measured option while the paper's algorithm
stays the default. The reference setting of a set of runs is the paper's
one-sided comparison with the N and D most of its runs use (the grid's own
choice: 1 and 2 in the full-horizon grid, 1 and 1 in small test grids). An
option run is set beside the reference run that differs from it only in the
option fields and in what follows from the trajectory budget (rounds,
evaluation spacing): same task, K, step sizes, seed, start and evaluation
episodes. Their returns at the start are the same, so the paired difference
of final returns is the difference of gains. The claims (claims.py) are
checked on reference runs only.
"""
from collections import Counter

from fedzo.coordinator.analysis.null_control import CONFIG_DEFAULTS, format_interval, gain, is_null, verdict
from fedzo.coordinator.analysis.report import mean_ci

# The option fields at RunConfig's defaults (the comparison's, one-sided, is the paper's).
OPTION_DEFAULTS = {name: CONFIG_DEFAULTS[name] for name in ("comparison", "comparisons", "batch")}
# Fields an experiment derives from its trajectory budget and the options (rounds =
# budget // episodes per round), so they differ between an option and its baseline.
FOLLOWS_BUDGET = ("rounds", "eval_every")


def _settings(run: dict) -> dict:
    """A run's settings: its config (missing fields at their defaults), or for a run known
    only by its summary, what the summary says."""
    return {**CONFIG_DEFAULTS, **run.get("summary", {}), **run.get("config", {})}


def reference(runs: list) -> dict:
    """The reference setting of these runs: the paper's comparison, and the N and D most of
    them use (a tie goes to RunConfig's default)."""
    out = dict(OPTION_DEFAULTS)
    for field in ("comparisons", "batch"):
        counts = Counter(_settings(r)[field] for r in runs)
        if counts:
            out[field] = max(counts, key=lambda v: (counts[v], v == OPTION_DEFAULTS[field]))
    return out


def options_of(run: dict, ref: dict = OPTION_DEFAULTS) -> dict:
    """The option fields this run sets away from the reference setting ({} for a reference run)."""
    settings = _settings(run)
    return {k: settings[k] for k, value in ref.items() if settings[k] != value}


def is_reference(run: dict, ref: dict = OPTION_DEFAULTS) -> bool:
    """Whether the run uses the reference setting (no measured option)."""
    return not options_of(run, ref)


def _baseline_key(run: dict) -> tuple:
    settings = _settings(run)
    ignored = set(OPTION_DEFAULTS) | set(FOLLOWS_BUDGET)
    return tuple(sorted((k, repr(v)) for k, v in settings.items() if k in CONFIG_DEFAULTS and k not in ignored))


def option_pairs(runs: list, series_of, ref: dict) -> dict:
    """option series -> (baseline series, [(option run, baseline run)]), seeds paired, for
    the reference setting `ref`. Only runs with real preferences; a null run is paired with
    its own twin elsewhere."""
    baselines = {_baseline_key(r): r for r in runs if is_reference(r, ref) and not is_null(r)}
    out = {}
    for run in runs:
        if is_reference(run, ref) or is_null(run):
            continue
        base = baselines.get(_baseline_key(run))
        if base is not None:
            out.setdefault(series_of(run), (series_of(base), []))[1].append((run, base))
    return dict(sorted(out.items()))


def rows(runs: list, series_of, ref: dict = None) -> list:
    """One row per option series: its gain, its baseline's, the paired difference (`ref`:
    the reference setting, by default these runs')."""
    out = []
    ref = ref or reference(runs)
    for series, (base_series, pairs) in option_pairs(runs, series_of, ref).items():
        gains = [gain(run["summary"]) for run, _ in pairs]
        base_gains = [gain(base["summary"]) for _, base in pairs]
        difference = mean_ci([g - b for g, b in zip(gains, base_gains)])
        out.append({"series": series, "baseline": base_series, "seeds": len(pairs),
                    "options": options_of(pairs[0][0], ref), "rounds": pairs[0][0]["summary"].get("rounds"),
                    "baseline_rounds": pairs[0][1]["summary"].get("rounds"),
                    "gain": mean_ci(gains), "baseline_gain": mean_ci(base_gains),
                    "difference": difference, "verdict": _option_verdict(difference)})
    return out


def _option_verdict(difference: tuple) -> str:
    said = verdict(difference)      # the same rule as against the null: the 95 % interval against 0
    return {"beats the null": "better than the reference setting",
            "below the null": "worse than the reference setting",
            "not distinguishable from the null": "not distinguishable"}.get(said, said)


def markdown(runs: list, series_of, ref: dict = None) -> str:
    """The 'measured options' table of a report, or '' when no run has a reference twin
    (`ref`: the reference setting, by default these runs')."""
    ref = ref or reference(runs)
    table = rows(runs, series_of, ref)
    if not table:
        return ""
    columns = ["option series", "options", "reference series", "seeds", "rounds", "gain",
               "reference gain", "option - reference (paired)", "verdict"]
    lines = ["### Measured options beside the reference runs", "",
             f"The reference runs use the paper's {ref['comparison']} comparison with N = {ref['comparisons']} "
             f"and D = {ref['batch']} (most runs' setting). Each option run is set beside the reference run "
             f"with the same task, K, step sizes and seed (same start, same evaluation episodes, same "
             f"trajectory budget), paired by seed; intervals are 95 % t-intervals over seeds.", "",
             "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for r in table:
        options = ", ".join(f"{k} = {v}" for k, v in r["options"].items())
        cells = [r["series"], options, r["baseline"], r["seeds"], f"{r['rounds']} vs {r['baseline_rounds']}",
                 format_interval(r["gain"]), format_interval(r["baseline_gain"]),
                 format_interval(r["difference"]), r["verdict"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"

