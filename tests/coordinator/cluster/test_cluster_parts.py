"""The Ray code's parts that need no Ray: the missing-Ray message, the code check, files, progress."""
import sys

import pytest
from small_runs import write_experiment

from fedzo.cli import main
from fedzo.coordinator.cluster.cell_files import read_folder, write_folder
from fedzo.coordinator.cluster.code_check import code_digest
from fedzo.coordinator.cluster.grid import cell_task
from fedzo.coordinator.cluster.progress import GridProgress

SPEC = {"base": {"task": "hopper", "batch": 1, "comparisons": 1, "eval_every": 1, "eval_episodes": 1,
                 "horizon": 100},
        "budget_episodes": 4, "seeds": [0], "variants": [{"label": "one", "agents": 1}]}


@pytest.fixture
def no_ray(monkeypatch):
    """This process as if Ray were not installed (`import ray` raises ImportError)."""
    monkeypatch.setitem(sys.modules, "ray", None)


def test_experiment_with_ray_missing_says_how_to_install_it(no_ray, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["experiment", str(write_experiment(tmp_path, SPEC)), "--out", str(out), "--ray"]) == 2
    err = capsys.readouterr().err
    assert "--ray: this needs Ray, which is not installed" in err and "pip install 'fedzo[ray]'" in err
    assert not list(out.rglob("summary.json"))


def test_simulate_with_ray_missing_says_how_to_install_it_and_leaves_no_run(no_ray, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["simulate", "--link", "ray", "--agents", "2", "--rounds", "1", "--out", str(out)]) == 2
    assert "--link ray: this needs Ray" in capsys.readouterr().err
    assert not out.exists()


def test_every_other_command_works_without_ray(no_ray, tmp_path):
    out = tmp_path / "out"
    assert main(["experiment", str(write_experiment(tmp_path, SPEC)), "--out", str(out)]) == 0
    assert (out / "one" / "seed-0" / "summary.json").exists()


@pytest.mark.parametrize("args, words", [
    (["--link", "inproc", "--actors", "2"], "--ray-address and --actors need --link ray"),
    (["--link", "tcp", "--ray-address", "10.0.0.1:6379"], "--ray-address and --actors need --link ray"),
    (["--link", "ray", "--actors", "0"], "--actors must be at least 1"),
    (["--link", "ray", "--board", "pi-zero-2w"], "--board and board options need --link serial"),
])
def test_ray_options_are_checked(args, words, tmp_path, capsys):
    assert main(["simulate", *args, "--agents", "2", "--rounds", "1", "--out", str(tmp_path / "r")]) == 2
    assert words in capsys.readouterr().err


def test_a_node_with_other_code_refuses_the_cell(tmp_path):
    from fedzo.coordinator.analysis.experiment import cells, load_experiment
    (cell,) = cells(load_experiment(write_experiment(tmp_path, SPEC)))
    result = cell_task(cell, {}, digest="0" * 16)
    assert result["summary"] is None and result["files"] == {}
    assert result["error"].startswith("CodeMismatch: node ") and "runs other fedzo code" in result["error"]
    assert code_digest() == code_digest() != "0" * 16


def test_a_cell_task_runs_the_cell_from_the_files_it_is_sent(tmp_path):
    from fedzo.coordinator.analysis.experiment import cells, load_experiment
    (cell,) = cells(load_experiment(write_experiment(tmp_path, SPEC)))
    first = cell_task(cell, {}, code_digest())
    assert first["error"] is None and first["ran"] and "summary.json" in first["files"]
    # Sent back its own finished folder, the task does not run it again.
    again = cell_task(cell, first["files"], code_digest())
    assert not again["ran"] and again["summary"] == first["summary"] and again["files"] == first["files"]
    ray = sys.modules.get("ray")
    assert ray is None or not ray.is_initialized()     # run outside Ray, it starts none (it did)


def test_files_are_written_summary_last_and_never_outside_the_folder(tmp_path, monkeypatch):
    from fedzo.coordinator.cluster import cell_files
    files = {"summary.json": b"{}", "config.json": b"{\"a\": 1}", "sub/metrics.jsonl": b"x\n"}
    written, replace = [], cell_files.os.replace
    monkeypatch.setattr(cell_files.os, "replace", lambda a, b: (written.append(b.name), replace(a, b)))
    write_folder(tmp_path / "cell", files)
    assert read_folder(tmp_path / "cell") == files
    assert written[-1] == "summary.json" and sorted(written) == ["config.json", "metrics.jsonl", "summary.json"]
    with pytest.raises(ValueError, match="outside"):
        write_folder(tmp_path / "cell", {"../escape.txt": b"no"})
    assert not (tmp_path / "escape.txt").exists()
    assert read_folder(tmp_path / "nothing-here") == {}


def test_progress_counts_and_estimates_the_time_left():
    progress = GridProgress(total=6, done_before=2)
    assert progress.line(slots=2) == "2 done, 0 running, 0 failed of 6"     # no estimate before a cell ran
    for _ in range(3):
        progress.started()
    progress.finished(30.0, ok=True)
    progress.finished(10.0, ok=False)
    # 2 cells left x 30 s each (failures do not count towards the mean), 2 at a time.
    assert progress.line(slots=2) == "3 done, 1 running, 1 failed of 6; ~30 s left"
    progress.finished(90.0, ok=True)
    assert progress.seconds_left(slots=1) == 60.0 and progress.line(slots=1).endswith("~60 s left")


def test_a_cluster_without_cpus_and_a_local_ray_that_cannot_start_are_clear_errors(monkeypatch, tmp_path, capsys):
    from types import SimpleNamespace

    from fedzo.coordinator.cluster.connect import RayUnavailable, cluster_cpus
    with pytest.raises(RayUnavailable, match="offers no CPUs: add a node with `ray start --address"):
        cluster_cpus(SimpleNamespace(cluster_resources=lambda: {"memory": 1e9}))
    assert cluster_cpus(SimpleNamespace(cluster_resources=lambda: {"CPU": 3.0})) == 3

    def init(**kwargs):
        raise OSError("No space left on device: /dev/shm")

    monkeypatch.setitem(sys.modules, "ray", SimpleNamespace(is_initialized=lambda: False, init=init))
    out = tmp_path / "out"
    assert main(["experiment", str(write_experiment(tmp_path, SPEC)), "--out", str(out), "--ray"]) == 2
    assert "--ray: a local Ray did not start: OSError: No space left on device" in capsys.readouterr().err
