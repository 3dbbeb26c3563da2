"""Measured options (symmetric comparison, N comparisons per vote, D episodes per batch)
set beside the reference runs (the paper's comparison, the grid's N and D), paired by seed, and kept out of the claims."""
import pytest
from small_runs import write_experiment

from fedzo.coordinator.analysis import options
from fedzo.coordinator.analysis.claims import claim_par_beats_fedavg, index_runs, null_index
from fedzo.coordinator.analysis.experiment import load_experiment, run_experiment
from fedzo.coordinator.analysis.report import write_report

NOISE = [3, -2, 5, -4, 1]


def run(series, seed, gain, task="hopper", algo="par-s2zpo", k=5, rounds=50, preference="panel", **option):
    """A run as the report loads it: its config and summary, from a common start of 1000."""
    config = {"task": task, "algo": algo, "agents": k, "seed": seed, "rounds": rounds, "alpha": 0.001,
              "preference": preference, **option}
    summary = {"task": task, "algo": algo, "agents": k, "seed": seed, "rounds": rounds, "preference": preference,
               "return_initial": 1000.0, "return_final": 1000.0 + gain}
    return {"series": series, "config": config, "summary": summary}


def series_of(r):
    return r["series"]


def paper(gains, **kw):
    return [run("Par K=5", s, g, **kw) for s, g in enumerate(gains)]


def test_an_option_pairs_with_the_paper_setting_of_its_own_task_k_and_seed():
    runs = paper([400 + n for n in NOISE])
    runs += [run("Par K=5 N=3", s, 500 + n, comparisons=3, rounds=16) for s, n in enumerate(NOISE)]
    runs += [run("Par K=10", s, 0, k=10, rounds=25) for s in range(5)]           # not its baseline
    runs += [run("Par K=5 swimmer", s, -50, task="swimmer") for s in range(5)]   # nor this
    (row,) = options.rows(runs, series_of)
    assert row["series"] == "Par K=5 N=3" and row["baseline"] == "Par K=5" and row["seeds"] == 5
    assert row["options"] == {"comparisons": 3} and (row["rounds"], row["baseline_rounds"]) == (16, 50)
    assert row["difference"][0] == pytest.approx(100.0) and row["difference"][1] == pytest.approx(0.0)


@pytest.mark.parametrize("option_gains, verdict", [
    ([500 + 2 * n for n in NOISE], "better than the reference setting"),
    ([300 + 2 * n for n in NOISE], "worse than the reference setting"),
    ([400 + 20 * (-1) ** s for s in range(5)], "not distinguishable"),
])
def test_the_verdict_follows_the_paired_interval(option_gains, verdict):
    runs = paper([400 + n for n in NOISE])
    runs += [run("Par K=5 D=6", s, g, batch=6, rounds=16) for s, g in enumerate(option_gains)]
    assert options.rows(runs, series_of)[0]["verdict"] == verdict
    assert verdict in options.markdown(runs, series_of)


def test_runs_known_only_by_their_summary_and_runs_without_a_baseline():
    # Runs written before config.json carried these fields are reference runs.
    assert options.is_reference({"summary": {"task": "hopper"}})
    assert options.options_of({"summary": {"comparison": "symmetric", "comparisons": 1}}) == {"comparison": "symmetric"}
    lone = [run("Par K=5 N=3", s, 10, comparisons=3) for s in range(3)]
    assert options.rows(lone, series_of) == [] and options.markdown(lone, series_of) == ""


def test_options_and_their_nulls_stay_out_of_the_claims():
    runs = paper([400 + n for n in NOISE])
    runs += [run("Fed K=5", s, 100 + n, algo="fedavg-s2zpo") for s, n in enumerate(NOISE)]
    runs += [run("Par K=5 null", s, 20 + n, preference="coin") for s, n in enumerate(NOISE)]
    # An option and its own null whose figures would turn the verdict if they were mixed in.
    runs += [run("Par K=5 D=6", s, -900, batch=6, rounds=16) for s in range(5)]
    runs += [run("Par K=5 D=6 null", s, 900, batch=6, rounds=16, preference="coin") for s in range(5)]
    idx = index_runs(runs, series_of)
    assert idx is not None                              # not mistaken for an ablation
    claim = claim_par_beats_fedavg(idx, null_index(runs))
    assert "Verdict: **confirmed**" in claim


def test_the_report_of_a_grid_with_an_option_has_the_options_table(tmp_path):
    spec = {"base": {"task": "hopper", "batch": 1, "comparisons": 1, "eval_every": 0, "eval_episodes": 2,
                     "horizon": 30},
            "budget_episodes": 12, "seeds": [0, 1],
            "variants": [{"label": "Par K=2", "algo": "par-s2zpo", "agents": 2},
                         {"label": "Par K=2 N=3", "algo": "par-s2zpo", "agents": 2, "comparisons": 3}]}
    run_experiment(load_experiment(write_experiment(tmp_path, spec)), tmp_path / "grid", workers=1,
                   log=lambda *a: None)
    text = write_report(tmp_path / "grid").read_text()
    table = text.split("### Measured options beside the reference runs")[1]
    (line,) = [l for l in table.splitlines() if l.startswith("| Par_K=2_N=3")]
    assert "comparisons = 3" in line and "| 2 | 1 vs 3 |" in line
