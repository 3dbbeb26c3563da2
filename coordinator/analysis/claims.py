"""The paper's claims, checked one by one on an experiment's runs.

Each check finds the series it needs by (task, algo, K), compares them at the
equal trajectory budget the experiment gave them, and returns Markdown with
our numbers and a verdict: confirmed, partly, or not confirmed. The
statistics are deliberately simple: a difference is "clear" when the 95 %
t-interval of the per-seed differences (seeds paired) excludes zero. A
learning claim is confirmed only where the method also clearly beats its
null control (the same runs with coin-flip votes, see null_control.py):
without that, a "win" may be two random walks of different step sizes.

1. Par-S2ZPO beats FedAvg-S2ZPO at equal samples (and its null).
2. Par-S2ZPO matches centralized S2ZPO (K = 1) at equal samples, with about
   K times fewer rounds: it beats its null, and its difference from K = 1 lies
   within MATCH_MARGIN of that gain.
3. Communication per round is tiny: ours (measured), the paper's d + K bits,
   FedAvg's float32 model exchange (measured).
4. Memory per agent is small: at the same task and K, Par-S2ZPO's learning
   state is below FedAvg-S2ZPO's, and a small share of the floor every agent
   pays anyway (interpreter + NumPy + MuJoCo + the task model).
"""
import math
from collections import defaultdict

import numpy as np

from fedzo.coordinator.analysis.null_control import COIN_BLIND, is_null
from fedzo.coordinator.analysis.options import is_reference, options_of, reference
from fedzo.coordinator.analysis.report import mean_ci, t95


def index_runs(runs, series_of, ref=None) -> dict:
    """(task, algo, K) -> {seed: summary} of the reference runs (options.py; `ref`, or that of
    these runs) with real preferences; None if two series share a key (ablations). Null
    controls are indexed by `null_index`."""
    out, owner, ref = defaultdict(dict), {}, ref or reference(runs)
    for run in runs:
        s = run["summary"]
        if is_null(run) or not is_reference(run, ref):
            continue
        key = (s["task"], s["algo"], s["agents"])
        if owner.setdefault(key, series_of(run)) != series_of(run):
            return None
        out[key][s["seed"]] = s
    return out


def null_index(runs, ref=None) -> dict:
    """(task, algo, K) -> {seed: summary} of the null-control runs (coin-flip votes) of the
    reference setting (options.py; what a coin cannot see, COIN_BLIND, does not count)."""
    out, ref = defaultdict(dict), ref or reference(runs)
    for run in runs:
        s = run["summary"]
        if is_null(run) and not set(options_of(run, ref)) - set(COIN_BLIND):
            out[(s["task"], s["algo"], s["agents"])][s["seed"]] = s
    return out


def paired_gain(a: dict, b: dict) -> tuple:
    """Mean and 95 % half-width of return_final(a) - return_final(b), seeds paired."""
    seeds = sorted(set(a) & set(b))
    return mean_ci([a[s]["return_final"] - b[s]["return_final"] for s in seeds]) + (len(seeds),)


def beats_null(runs: dict, nulls: dict, key) -> tuple:
    """(paired gain over the null (mean, half, n), whether it is clearly above 0); (None, False)
    when the series has no null control."""
    null = nulls.get(key)
    if not null or not set(null) & set(runs):
        return None, False
    mean, half, n = paired_gain(runs, null)   # same start and episodes: final difference = gain difference
    return (mean, half, n), n > 1 and mean - half > 0


def _verdict(wins: int, total: int) -> str:
    if total == 0:
        return "not checked (no runs)"
    if wins == total:
        return "confirmed"
    return "partly" if wins > 0 else "not confirmed"


def _final(runs: dict) -> str:
    mean, half = mean_ci([s["return_final"] for s in runs.values()])
    return f"{mean:.1f} ± {half:.1f}"


def _stat(stat) -> str:
    return "no null control" if stat is None else f"{stat[0]:+.1f} ± {stat[1]:.1f} (n={stat[2]})"


def claim_par_beats_fedavg(idx, nulls) -> str:
    """Confirmed where Par-S2ZPO clearly beats its null control and FedAvg-S2ZPO, seeds paired."""
    rows, wins, total = [], 0, 0
    for (task, algo, k), par in sorted(idx.items()):
        fed = idx.get((task, "fedavg-s2zpo", k))
        if algo != "par-s2zpo" or fed is None:
            continue
        over_null, learned = beats_null(par, nulls, (task, algo, k))
        fed_over_null, _ = beats_null(fed, nulls, (task, "fedavg-s2zpo", k))
        mean, half, n = paired_gain(par, fed)
        better = n > 1 and mean - half > 0
        if not learned:
            status = "no: no null control" if over_null is None else "no: does not clearly beat its null"
        elif better:
            status = "yes"
        else:
            status = "no: FedAvg-S2ZPO clearly better" if mean + half < 0 else "no: difference not clear"
        wins += status == "yes"
        total += 1
        rows.append(f"| {task} | {k} | {_final(par)} | {_final(fed)} | {_stat(over_null)} | {_stat(fed_over_null)} "
                    f"| {mean:+.1f} ± {half:.1f} (n={n}) | {status} |")
    head = ["### Claim 1: Par-S2ZPO beats FedAvg-S2ZPO at equal samples", "",
            "Confirmed only where Par-S2ZPO clearly beats its coin-flip null control and FedAvg-S2ZPO "
            "(95 % t-intervals of seed-paired differences above 0).", "",
            "| task | K | Par-S2ZPO final return | FedAvg-S2ZPO final return | Par - its null | FedAvg - its null "
            "| Par - FedAvg (95 % CI, paired) | clearly better |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    return "\n".join(head + rows + ["", f"Verdict: **{_verdict(wins, total)}** ({wins} of {total} comparisons clearly better)."])


# "Matches" needs an equivalence margin: the paired difference from centralized
# S2ZPO must lie within this share of what Par-S2ZPO learned over its null.
MATCH_MARGIN = 0.5
MAX_SEEDS_TO_DECIDE = 10_000   # beyond this, "more than" (no grid here would run it)


def seeds_to_decide(mean: float, half: float, n: int, margin: float) -> str:
    """What budget would decide an undecided match: the seeds after which the 95 % interval
    would fit within ±margin if the mean difference and its spread stayed as measured."""
    if abs(mean) >= margin:
        return "no number of seeds would, at this mean difference (it lies beyond the margin)"
    sd = half * math.sqrt(n) / t95(n - 1)
    for seeds in range(n + 1, MAX_SEEDS_TO_DECIDE + 1):
        if t95(seeds - 1) * sd / math.sqrt(seeds) < margin - abs(mean):
            return f"about {seeds} seeds would decide it at this mean and spread"
    return f"more than {MAX_SEEDS_TO_DECIDE} seeds would, at this mean and spread"


def claim_matches_centralized(idx, nulls) -> str:
    """Confirmed where Par-S2ZPO clearly beats its null and its difference from K = 1 lies
    within MATCH_MARGIN of that gain, seeds paired."""
    rows, matches, total = [], 0, 0
    for (task, algo, k), par in sorted(idx.items()):
        central = idx.get((task, "par-s2zpo", 1))
        if algo != "par-s2zpo" or k == 1 or central is None:
            continue
        over_null, learned = beats_null(par, nulls, (task, algo, k))
        mean, half, n = paired_gain(par, central)
        if not learned:
            status = "no: no null control" if over_null is None else "no: does not clearly beat its null"
        else:
            margin = MATCH_MARGIN * over_null[0]
            if -margin <= mean - half and mean + half <= margin:
                status = "yes"
            elif mean + half < 0:
                status = "no: clearly worse"
            else:
                status = f"undecided: interval wider than ±{margin:.0f}; {seeds_to_decide(mean, half, n, margin)}"
        matches += status == "yes"
        total += 1
        rounds_k = np.mean([s["rounds"] for s in par.values()])
        rounds_1 = np.mean([s["rounds"] for s in central.values()])
        rows.append(f"| {task} | {k} | {_final(par)} | {_final(central)} | {_stat(over_null)} | "
                    f"{mean:+.1f} ± {half:.1f} (n={n}) | {status} | {rounds_1:.0f} / {rounds_k:.0f} = "
                    f"{rounds_1 / rounds_k:.1f} |")
    head = ["### Claim 2: Par-S2ZPO matches centralized S2ZPO at equal samples, in about K times fewer rounds", "",
            f"Confirmed only where Par-S2ZPO clearly beats its coin-flip null control and the 95 % interval "
            f"of its seed-paired difference from K = 1 lies within ±{MATCH_MARGIN:g} x that gain.", "",
            "| task | K | Par-S2ZPO final return | centralized (K = 1) | Par - its null | Par - K=1 (95 % CI, paired) "
            "| matches | rounds K=1 / K |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    return "\n".join(head + rows + ["", f"Verdict: **{_verdict(matches, total)}** "
                                    f"({matches} of {total} match; the round ratio is K by construction "
                                    f"of equal budgets, so the sample-efficiency part is what is tested)."])


def claim_communication(idx) -> str:
    rows = []
    for (task, algo, k), runs in sorted(idx.items()):
        s = next(iter(runs.values()))
        up = np.mean([r["bytes_per_agent_per_round_up"] for r in runs.values()])
        down = np.mean([r["bytes_per_agent_per_round_down"] for r in runs.values()])
        rows.append(f"| {task} | {algo} | {k} | {s['d']} | {up:.1f} | {down:.1f} | {(s['d'] + k) / 8:.0f} | "
                    f"{4 * s['d']} |")
    par = [r for (t, a, k), rs in idx.items() if a == "par-s2zpo" for r in rs.values()]
    fed = [r for (t, a, k), rs in idx.items() if a == "fedavg-s2zpo" for r in rs.values()]
    verdict = "not checked (no runs)"
    if par:
        # Each run against the paper's figure for its own d and K (tasks differ in d).
        def per_round(r):
            return r["bytes_per_agent_per_round_up"] + r["bytes_per_agent_per_round_down"]
        def paper_bytes(r):      # d + K bits; K is the blocks (the agents in runs before fleets)
            return (r["d"] + r.get("blocks", r["agents"])) / 8
        worst = max(par, key=lambda r: per_round(r) / paper_bytes(r))
        ours, paper = per_round(worst), paper_bytes(worst)
        below = sum(per_round(r) < paper_bytes(r) for r in par)
        verdict = "confirmed" if below == len(par) else "partly"
        verdict += (f": {below} of {len(par)} Par-S2ZPO runs below the paper's d + K bits; at most {ours:.0f} B "
                    f"per agent per round (up + down, join and report amortised) where the paper's is {paper:.0f} B "
                    f"({worst['task']}, K = {worst['agents']}, seed {worst.get('seed')})")
        if fed:
            fed_round = min(per_round(r) for r in fed)
            verdict += f", and FedAvg's at least {fed_round:.0f} B"
    head = ["### Claim 3: communication per round", "",
            "Measured frame bytes per agent per round (framing, header and tag included; the join, welcome "
            "and final report amortised over the rounds), beside the paper's d + K bits and a float32 model.", "",
            "| task | algo | K | d | measured up B | measured down B | paper d + K bits in B | float32 model B |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    return "\n".join(head + rows + ["", f"Verdict: **{verdict}**."])


# Claim 4's "small": an agent's learning state is at most this share of its floor RSS.
SMALL_SHARE_OF_FLOOR = 0.01


def _mib(values, pick) -> str:
    return f"{pick(values) / 2**20:.1f}" if values else "-"


def claim_memory(idx) -> str:
    rows, state, floor = [], {}, {}
    for (task, algo, k), runs in sorted(idx.items()):
        agents = [a for r in runs.values() for a in r["per_agent"]]
        ls = [a["learning_state_bytes"] for a in agents if a.get("learning_state_bytes")]
        peak = [a["peak_rss_bytes"] for a in agents if a.get("peak_rss_bytes")]
        floors = [a["floor_rss_bytes"] for a in agents if a.get("floor_rss_bytes")]
        if not ls:
            continue
        state[task, algo, k] = max(ls)
        floor[task, algo, k] = min(floors) if floors else None
        rows.append(f"| {task} | {algo} | {k} | {max(ls)} | {_mib(floors, min)} | {_mib(peak, max)} |")
    comparisons, holds = [], 0
    for (task, algo, k), par in sorted(state.items()):
        fed = state.get((task, "fedavg-s2zpo", k))
        if algo != "par-s2zpo" or fed is None:
            continue
        base = floor[task, algo, k]
        share = None if base is None else par / base
        ok = par < fed and share is not None and share <= SMALL_SHARE_OF_FLOOR
        holds += ok
        share_text = "-" if share is None else f"{100 * share:.2f} %"
        comparisons.append(f"| {task} | {k} | {par} | {fed} | {fed / par:.1f}x | {share_text} | "
                           f"{'yes' if ok else 'no'} |")
    head = ["### Claim 4: memory per agent", "",
            "In-process runs share one process, so peak RSS here is the process's (the TCP demo measures "
            "each agent process on its own); the floor is what an agent held before its learning state "
            "(interpreter, NumPy, MuJoCo and the task model).", "",
            "| task | algo | K | learning state B | floor RSS MiB | peak RSS MiB |",
            "| --- | --- | --- | --- | --- | --- |"]
    compared = ["", f"Par-S2ZPO against FedAvg-S2ZPO at the same task and K: the claim holds where Par-S2ZPO's "
                f"learning state is the smaller and at most {100 * SMALL_SHARE_OF_FLOOR:g} % of the floor.", "",
                "| task | K | Par-S2ZPO learning state B | FedAvg-S2ZPO learning state B | FedAvg / Par | "
                "Par share of floor | holds |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
    verdict = (f"Verdict: **{_verdict(holds, len(comparisons))}** ({holds} of {len(comparisons)} comparisons: "
               f"Par-S2ZPO's learning state smaller than FedAvg-S2ZPO's and at most "
               f"{100 * SMALL_SHARE_OF_FLOOR:g} % of the floor).")
    return "\n".join(head + rows + compared + comparisons + ["", verdict])


def claims_markdown(runs, series_of, ref=None) -> str:
    """The claims section of a report; series_of(run) names a run's series, `ref` is the
    reference setting (options.py; by default these runs')."""
    ref = ref or reference(runs)
    idx = index_runs(runs, series_of, ref)
    if idx is None:
        return ("## The paper's claims\n\nNot checked here: several series share a task, algorithm and K "
                "(an ablation), so there is no single series to compare. `experiments/paper.json` is the "
                "experiment the claims are checked on.\n")
    nulls = null_index(runs, ref)
    parts = ["## The paper's claims, checked", ""]
    if any(not is_reference(run, ref) for run in runs):
        parts += [f"Runs with a measured option (a comparison other than the paper's one-sided one, or N "
                  f"and D other than most runs' N = {ref['comparisons']} and D = {ref['batch']}) are left "
                  f"out of the claims; the measured-options and gain-beside-null tables show them.", ""]
    parts += [claim_par_beats_fedavg(idx, nulls), "", claim_matches_centralized(idx, nulls), ""]
    for check in (claim_communication, claim_memory):
        parts += [check(idx), ""]
    return "\n".join(parts)
