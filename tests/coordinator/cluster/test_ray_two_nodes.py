"""Two Ray nodes on one machine (ray.cluster_utils.Cluster), joined by address as a real cluster is.

Each node has 1 CPU, so the grid's two cells and the simulation's two actors run one on each node;
results come back to the driver and equal the process pool's and the in-process link's.
"""
import json
import re

import pytest
from local_ray import cell_results, import_ray, results
from small_runs import KEY, write_experiment

from fedzo.cli import main
from fedzo.coordinator.analysis.experiment import load_experiment, run_experiment
from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.inproc import run_inproc
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.learning.config import RunConfig

import_ray()

SPEC = {"base": {"task": "hopper", "batch": 1, "comparisons": 1, "eval_every": 1, "eval_episodes": 1,
                 "horizon": 100, "agents": 2},
        "budget_episodes": 8, "seeds": [0, 1], "variants": [{"label": "Par K=2", "algo": "par-s2zpo"}]}
SHORT = dict(task="hopper", agents=4, rounds=2, batch=1, comparisons=1, eval_every=0, eval_episodes=1,
             horizon=100, seed=5)
QUIET = dict(log=lambda *a: None)


@pytest.fixture(scope="module")
def cluster():
    """A head node and one more node, 1 CPU each; its address (this process is not connected)."""
    from ray.cluster_utils import Cluster
    try:
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        cluster.add_node(num_cpus=1)
    except Exception as exc:
        pytest.skip(f"a two-node Ray cluster does not start here: {type(exc).__name__}: {exc}")
    yield cluster.address
    cluster.shutdown()


def test_a_grid_on_two_nodes_comes_back_to_the_driver_equal_to_the_pool(cluster, tmp_path, capsys):
    spec_file = write_experiment(tmp_path, SPEC)
    assert main(["experiment", str(spec_file), "--out", str(tmp_path / "ray"), "--ray", cluster]) == 0
    out = capsys.readouterr().out
    assert f"ray: joining the cluster at {cluster}" in out and "on Ray with 2 CPUs" in out
    nodes = set(re.findall(r" s on [^/]+/(\w+);", out))
    assert len(nodes) == 2                                     # one cell on each node
    run_experiment(load_experiment(spec_file), tmp_path / "pool", workers=2, **QUIET)
    assert cell_results(tmp_path / "ray") == cell_results(tmp_path / "pool")


def test_a_simulation_with_actors_on_two_nodes_equals_the_in_process_run(cluster, tmp_path, capsys):
    config = RunConfig(**SHORT)
    run = Run(config, tmp_path / "inproc", plots=False, **QUIET)
    reference = run_inproc(run, [AgentRuntime(task=config.task, **QUIET) for _ in range(config.agents)], KEY,
                           **QUIET)
    out = tmp_path / "ray"
    args = [f"--{k.replace('_', '-')}={v}" for k, v in SHORT.items()]
    assert main(["simulate", "--link", "ray", "--ray-address", cluster, "--quiet", "--out", str(out), *args]) == 0
    assert "ray: 4 agents in 2 actors" in capsys.readouterr().out      # 1 CPU each: one actor per node
    summary = json.loads((out / "summary.json").read_text())
    assert results(summary) == results(reference)
