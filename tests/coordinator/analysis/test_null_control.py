"""Null controls in experiment grids, grids finished in pieces, and the gain-beside-null table."""
import json
import shutil

import pytest
from small_runs import write_experiment

from fedzo.coordinator.analysis import null_control
from fedzo.coordinator.analysis.experiment import COMPUTE_FILE, cells, load_experiment, run_experiment
from fedzo.coordinator.analysis.report import write_report
from fedzo.edge.learning.config import ConfigError

SPEC = {
    "base": {"task": "hopper", "batch": 1, "comparisons": 1, "eval_every": 0, "eval_episodes": 2,
             "horizon": 30},
    "budget_episodes": 4,
    "seeds": [0, 1],
    "null_control": ["Par K=2"],
    "variants": [
        {"label": "Par K=2", "algo": "par-s2zpo", "agents": 2},
        {"label": "central", "algo": "par-s2zpo", "agents": 1},
    ],
}


def test_a_null_control_is_the_same_cells_with_coin_flip_votes(tmp_path):
    runs = cells(load_experiment(write_experiment(tmp_path, SPEC)))
    by_label = {}
    for cell in runs:
        by_label.setdefault(cell["label"], []).append(cell["config"])
    assert set(by_label) == {"Par K=2", "Par K=2 null", "central"}      # only the listed variant
    for real, null in zip(by_label["Par K=2"], by_label["Par K=2 null"]):
        assert null.preference == "coin" and real.preference == "panel"
        assert {**real.to_dict(), "preference": "coin"} == null.to_dict()   # same seed, rounds, everything
    every = cells(load_experiment(write_experiment(tmp_path, dict(SPEC, null_control=True))))
    assert {c["label"] for c in every} == {"Par K=2", "Par K=2 null", "central", "central null"}


@pytest.mark.parametrize("bad", [["Par K=3"], "yes", 1])
def test_a_wrong_null_control_is_refused_with_its_name(tmp_path, bad):
    with pytest.raises(ConfigError, match="null_control"):
        load_experiment(write_experiment(tmp_path, dict(SPEC, null_control=bad)))


def test_a_grid_finished_in_pieces_skips_committed_cells_and_records_compute(tmp_path):
    spec = load_experiment(write_experiment(tmp_path, SPEC))
    first = tmp_path / "first"
    run_experiment(spec, first, workers=2, log=lambda *a: None)
    sessions = [json.loads(l) for l in (first / COMPUTE_FILE).read_text().splitlines()]
    assert len(sessions) == 1 and sessions[0]["cells_run"] == 6
    assert sessions[0]["cpu_seconds"] > 0 and sessions[0]["workers"] == 2
    # What a commit keeps of finished cells: config, summary, metrics (no checkpoints, no key).
    committed = tmp_path / "committed"
    for summary in first.rglob("summary.json"):
        cell = summary.parent
        target = committed / cell.relative_to(first)
        target.mkdir(parents=True)
        for name in ("config.json", "summary.json", "metrics.jsonl"):
            shutil.copy(cell / name, target / name)
        assert json.loads(summary.read_text())["cpu_seconds"] > 0
    # Drop two cells, as if the grid had been stopped before them.
    for cell in ("central/seed-1", "Par_K=2_null/seed-0"):
        shutil.rmtree(committed / cell)
    logged = []
    results = run_experiment(spec, committed, workers=2, log=logged.append)
    assert len(results) == 6
    sessions = [json.loads(l) for l in (committed / COMPUTE_FILE).read_text().splitlines()]
    assert [s["cells_run"] for s in sessions] == [2]              # only the missing cells ran
    again = {f: s["theta_hash"] for f, s in results}
    before = {str(p.parent.relative_to(first)): json.loads(p.read_text())["theta_hash"]
              for p in first.rglob("summary.json")}
    assert again == before                                        # the re-run cells are bit-identical


def test_the_compute_record_grows_cell_by_cell_after_earlier_sessions(tmp_path):
    spec = load_experiment(write_experiment(tmp_path, SPEC))
    out = tmp_path / "grid"
    out.mkdir()
    (out / COMPUTE_FILE).write_text(json.dumps({"cells_run": 3, "cpu_seconds": 9.0}))   # an earlier session
    seen = []

    def log(line):   # called after each cell; the record of the cells before it is on disk by then
        if line.startswith("[2/"):
            seen.append([json.loads(l) for l in (out / COMPUTE_FILE).read_text().splitlines()])

    run_experiment(spec, out, workers=1, log=log)
    assert seen and [s["cells_run"] for s in seen[0]] == [3, 1]   # stopped here, the first cell is recorded
    sessions = [json.loads(l) for l in (out / COMPUTE_FILE).read_text().splitlines()]
    assert [s["cells_run"] for s in sessions] == [3, 6]


def _run(seed, gain, preference="panel", horizon=1000):
    config = {"task": "hopper", "algo": "par-s2zpo", "agents": 5, "seed": seed, "horizon": horizon,
              "preference": preference}
    return {"config": config, "summary": {"return_initial": 1000.0, "return_final": 1000.0 + gain,
                                          "eval_horizon": 1000}}


def _series(run):
    return "coin" if run["config"]["preference"] == "coin" else "method"


def test_a_method_beats_the_null_only_when_the_paired_interval_says_so():
    clear = [_run(s, 300 + s) for s in range(5)] + [_run(s, 10 * (-1) ** s, "coin") for s in range(5)]
    (row,) = null_control.rows(clear, _series)
    assert row["seeds"] == 5 and row["verdict"] == "beats the null"
    assert row["difference"][0] == pytest.approx(302 - 2)
    noisy = [_run(s, g) for s, g in enumerate([400, -300, 350, -250, 100])]
    noisy += [_run(s, 0.0, "coin") for s in range(5)]
    assert null_control.rows(noisy, _series)[0]["verdict"] == "not distinguishable from the null"
    worse = [_run(s, -200 - s) for s in range(4)] + [_run(s, 5.0 + s, "coin") for s in range(4)]
    assert null_control.rows(worse, _series)[0]["verdict"] == "below the null"
    # A null run with another horizon is another config: it is nobody's twin.
    unpaired = [_run(0, 100)] + [_run(0, 0, "coin", horizon=200)]
    assert null_control.rows(unpaired, _series) == []


def test_a_coin_flip_run_does_not_depend_on_what_a_coin_cannot_see(tmp_path):
    """Why one null serves the symmetric comparison too: same seed, same theta, bit for bit."""
    from small_runs import run_small
    hashes = {run_small(tmp_path, name=comparison, preference="coin", comparison=comparison,
                        panel_scale=scale)[2]["theta_hash"]
              for comparison, scale in (("one-sided", 0.0), ("symmetric", 0.0), ("one-sided", 7.0))}
    assert len(hashes) == 1
    assert run_small(tmp_path, name="seed 8", preference="coin", seed=8)[2]["theta_hash"] not in hashes


def test_a_null_written_before_a_field_existed_pairs_with_a_run_that_names_its_default():
    # Cells of one grid run over months: an older null's config.json lacks `hidden` (and
    # the fleet fields), which it ran at their defaults.
    newer = [dict(r, config=dict(r["config"], hidden="64,64", blocks=0)) for r in [_run(s, 100 + s) for s in range(3)]]
    older_nulls = [_run(s, 0.0, "coin") for s in range(3)]
    assert all("hidden" not in r["config"] for r in older_nulls)
    rows = null_control.rows(newer + older_nulls, _series)
    assert len(rows) == 1 and rows[0]["seeds"] == 3
    other = [dict(r, config=dict(r["config"], hidden="32,32")) for r in [_run(s, 100 + s) for s in range(3)]]
    assert null_control.rows(other + older_nulls, _series) == []      # a real difference still splits them


def test_the_symmetric_comparison_pairs_with_the_one_sided_null():
    symmetric = [dict(r, config=dict(r["config"], comparison="symmetric")) for r in
                 [_run(s, 200 + s) for s in range(3)]]
    runs = symmetric + [_run(s, 100 + s) for s in range(3)] + [_run(s, 0.0, "coin") for s in range(3)]
    series = {id(r): ("symmetric" if r["config"].get("comparison") == "symmetric" else _series(r)) for r in runs}
    rows = {row["series"]: row for row in null_control.rows(runs, lambda r: series[id(r)])}
    assert set(rows) == {"method", "symmetric"}
    assert rows["symmetric"]["difference"][0] == pytest.approx(201) and rows["method"]["seeds"] == 3


def test_the_report_sets_each_gain_beside_its_null(tmp_path):
    spec = load_experiment(write_experiment(tmp_path, SPEC))
    run_experiment(spec, tmp_path / "grid", workers=2, log=lambda *a: None)
    text = write_report(tmp_path / "grid").read_text()
    assert "### Gain beside the null control" in text
    table = text.split("### Gain beside the null control")[1].split("\n\n")[2]
    rows = [l for l in table.splitlines() if l.startswith("| Par_K=2 |")]
    assert len(rows) == 1 and "| 2 | 1000 |" in rows[0]           # 2 seeds, judged at 1000 steps
    assert rows[0].endswith("at 30 steps |")                       # and beside the null where it trained
    assert "| gain at the training horizon |" in text
    assert "| central" not in table                                # no null twin, no row


def test_cells_run_seed_by_seed_so_a_partial_grid_stays_paired(tmp_path):
    from fedzo.coordinator.analysis.experiment import seed_major
    order = seed_major(cells(load_experiment(write_experiment(tmp_path, SPEC))))
    assert [c["config"].seed for c in order] == [0, 0, 0, 1, 1, 1]
    assert [c["label"] for c in order[:3]] == ["Par K=2", "Par K=2 null", "central"]


def test_task_overrides_set_tuned_values_per_task_under_the_variants(tmp_path):
    spec = dict(SPEC, grid={"task": ["hopper", "walker2d"]}, seeds=[0], null_control=True,
                task_overrides={"hopper": {"alpha": 0.001}, "walker2d": {"alpha": 0.003}},
                variants=[{"label": "tuned", "agents": 2}, {"label": "fixed", "agents": 2, "alpha": 0.005}])
    by = {(c["label"], c["config"].task): c["config"].alpha
          for c in cells(load_experiment(write_experiment(tmp_path, spec)))}
    assert by[("tuned", "hopper")] == 0.001 and by[("tuned", "walker2d")] == 0.003
    assert by[("tuned null", "walker2d")] == 0.003                  # the null twin gets the same
    assert by[("fixed", "hopper")] == by[("fixed", "walker2d")] == 0.005   # a variant's own value wins
    with pytest.raises(ConfigError, match="task_overrides"):
        load_experiment(write_experiment(tmp_path, dict(spec, task_overrides={"hoper": {"alpha": 0.1}})))


def test_more_seeds_give_some_series_further_seeds_named_as_the_grids_own(tmp_path):
    spec = dict(SPEC, grid={"task": ["hopper", "swimmer"]},
                more_seeds=[{"variants": ["Par K=2"], "grid": {"task": ["swimmer"]}, "seeds": [1, 5, 6]}])
    folders = {c["folder"] for c in cells(load_experiment(write_experiment(tmp_path, spec)))}
    base = {f"{label}/task={task}/seed-{seed}" for label in ("Par_K=2", "Par_K=2_null", "central")
            for task in ("hopper", "swimmer") for seed in (0, 1)}
    extra = {f"{label}/task=swimmer/seed-{seed}" for label in ("Par_K=2", "Par_K=2_null") for seed in (5, 6)}
    assert folders == base | extra                      # seed 1 was there already: not twice; nulls follow


@pytest.mark.parametrize("bad, words", [
    ([{"variants": ["nope"], "seeds": [3]}], "variants must list labels"),
    ([{"variants": ["Par K=2"], "grid": {"task": ["walker2d"]}, "seeds": [3]}], "grid must give some"),
    ([{"variants": ["Par K=2"], "seeds": []}], "seeds must be a list of whole numbers"),
    ({"variants": ["Par K=2"]}, "more_seeds must be a list"),
])
def test_wrong_more_seeds_are_refused_by_name(tmp_path, bad, words):
    spec = dict(SPEC, grid={"task": ["hopper"]}, more_seeds=bad)
    with pytest.raises(ConfigError, match=words):
        load_experiment(write_experiment(tmp_path, spec))
