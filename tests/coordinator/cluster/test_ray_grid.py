"""`fedzo experiment --ray` on a local Ray of 2 CPUs: the pool's results, resumed, a failing cell."""
import json
import shutil

import pytest
from local_ray import cell_results, import_ray
from small_runs import write_experiment

from fedzo.cli import main
from fedzo.coordinator.analysis.experiment import COMPUTE_FILE, load_experiment, run_experiment

import_ray()

# Four tiny cells (8 trajectories of a 100-step horizon each): K=2 and K=1, seeds 0 and 1.
SPEC = {
    "base": {"task": "hopper", "batch": 1, "comparisons": 1, "eval_every": 1, "eval_episodes": 1,
             "horizon": 100},
    "budget_episodes": 8,
    "seeds": [0, 1],
    "variants": [
        {"label": "Par K=2", "algo": "par-s2zpo", "agents": 2},
        {"label": "central", "algo": "par-s2zpo", "agents": 1},
    ],
}
QUIET = dict(log=lambda *a: None)



def stop_part_way(out):
    """Leave one cell killed after its last checkpoint and one never started; (stopped, fresh)."""
    stopped, fresh = out / "central" / "seed-1", out / "Par_K=2" / "seed-1"
    (stopped / "summary.json").unlink()
    shutil.rmtree(fresh)
    return stopped, fresh


@pytest.fixture(scope="module")
def pool_grid(tmp_path_factory):
    """The grid run by the process pool (the reference), and the pool's resume of it stopped part-way."""
    base = tmp_path_factory.mktemp("pool")
    spec_file = write_experiment(base, SPEC)
    run_experiment(load_experiment(spec_file), base / "out", workers=2, **QUIET)
    shutil.copytree(base / "out", base / "resumed")
    stop_part_way(base / "resumed")
    run_experiment(load_experiment(spec_file), base / "resumed", workers=2, **QUIET)
    return spec_file, base / "out", base / "resumed"


@pytest.fixture(scope="module")
def ray(pool_grid, ray):
    """The local Ray, started after the pool's runs: a pool forked from a process connected to
    Ray would copy Ray's threads (and any lock one of them held) into its workers."""
    return ray


def test_the_grid_on_ray_equals_the_process_pool(ray, pool_grid, tmp_path, capsys):
    spec_file, pool_out, _ = pool_grid
    out = tmp_path / "ray"
    assert main(["experiment", str(spec_file), "--out", str(out), "--ray"]) == 0
    assert cell_results(out) == cell_results(pool_out)
    assert len(cell_results(out)) == 4
    text = capsys.readouterr().out
    # Progress as cells finish: where it ran, done / running / failed, the time left.
    assert "[4/4]" in text and "4 done, 0 running, 0 failed of 4" in text and " left)" in text
    (session,) = [json.loads(line) for line in (out / COMPUTE_FILE).read_text().splitlines()]
    assert session["cells_run"] == 4 and session["ray"] == "local" and session["cores"] == 2


def test_a_resumed_grid_skips_done_cells_and_resumes_a_stopped_one(ray, pool_grid, tmp_path):
    spec_file, pool_out, resumed_by_pool = pool_grid
    out = tmp_path / "resumed"
    shutil.copytree(pool_out, out)
    stopped, _ = stop_part_way(out)
    metrics_before = (stopped / "metrics.jsonl").read_bytes()
    done = {p: p.stat().st_mtime_ns for p in out.rglob("summary.json")}
    assert main(["experiment", str(spec_file), "--out", str(out), "--ray"]) == 0
    assert {p: p.stat().st_mtime_ns for p in done} == done          # done cells were not run again
    # The stopped cell went to its worker with its checkpoint and resumed there: its rounds
    # were not run again (a rerun would write new times into metrics.jsonl) ...
    assert (stopped / "metrics.jsonl").read_bytes() == metrics_before
    # ... and every cell is what the pool makes of the same stopped grid (a resumed cell's
    # session joins and syncs again, so its bytes are not the uninterrupted run's).
    assert cell_results(out) == cell_results(resumed_by_pool)
    sessions = [json.loads(line) for line in (out / COMPUTE_FILE).read_text().splitlines()]
    assert len(sessions) == 2 and sessions[1]["cells_run"] == 2      # the pool's line kept, this one added


def test_a_failing_cell_is_reported_and_the_others_finish(ray, tmp_path, capsys):
    spec = dict(SPEC, seeds=[0], variants=[
        {"label": "good", "algo": "par-s2zpo", "agents": 2},
        {"label": "bad", "algo": "par-s2zpo", "agents": 2, "actor": str(tmp_path / "missing.npz")},
        {"label": "also good", "algo": "par-s2zpo", "agents": 1},
    ])
    out = tmp_path / "out"
    assert main(["experiment", str(write_experiment(tmp_path, spec)), "--out", str(out), "--ray"]) == 1
    captured = capsys.readouterr()
    assert "1 of 3 runs failed:\nbad/seed-0: FileNotFoundError" in captured.err
    assert "re-run the same command to retry them" in captured.err
    assert "bad/seed-0: FAILED on " in captured.out and "2 done, " in captured.out
    assert (out / "good" / "seed-0" / "summary.json").exists()
    assert (out / "also_good" / "seed-0" / "summary.json").exists()
    assert not (out / "bad" / "seed-0" / "summary.json").exists()
