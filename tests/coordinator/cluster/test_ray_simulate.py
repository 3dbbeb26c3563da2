"""`fedzo simulate --link ray`: agents in Ray actors, bytes and results those of the in-process link."""
import json

from local_ray import import_ray, results
from small_runs import KEY

from fedzo.cli import main
from fedzo.coordinator.cluster import ray_link
from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.inproc import run_inproc
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.learning.config import RunConfig

import_ray()

# Short settings: 100-step training episodes, one comparison per agent, two rounds.
SHORT = dict(task="hopper", rounds=2, batch=1, comparisons=1, eval_every=0, eval_episodes=1, horizon=100, seed=11)
QUIET = dict(log=lambda *a: None)



def inproc_summary(folder, agents):
    config = RunConfig(agents=agents, **SHORT)
    run = Run(config, folder, plots=False, **QUIET)
    return run_inproc(run, [AgentRuntime(task=config.task, **QUIET) for _ in range(agents)], KEY, **QUIET)


def short_args(agents):
    return [f"--agents={agents}", *(f"--{k.replace('_', '-')}={v}" for k, v in SHORT.items())]


def test_fifty_agents_in_actors_equal_the_in_process_run(ray, tmp_path, capsys):
    reference = inproc_summary(tmp_path / "inproc", 50)
    out = tmp_path / "ray"
    assert main(["simulate", "--link", "ray", "--quiet", "--out", str(out), *short_args(50)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert "ray: 50 agents in 2 actors" in capsys.readouterr().out       # several agents per actor
    assert summary["theta_hash"] == reference["theta_hash"]
    assert (summary["bytes_up"], summary["bytes_down"]) == (reference["bytes_up"], reference["bytes_down"])
    assert summary["agents_reported"] == 50 and summary["comparisons"] == reference["comparisons"] > 0
    assert results(summary) == results(reference)                         # every figure but time and memory
    assert {a["transport"] for a in summary["per_agent"]} == {"ray"}


def test_a_lost_actor_drops_its_agents_and_the_run_goes_on(ray, tmp_path, monkeypatch):
    """An actor killed mid-run (a node lost): its agents drop, the others finish the run."""
    step, calls = ray_link._step, []

    def kill_actor_0_before_the_second_step(ray_, hosts, host_of, batch):
        calls.append(len(batch))
        if len(calls) == 2:
            ray_.kill(hosts[0])
        return step(ray_, hosts, host_of, batch)

    monkeypatch.setattr(ray_link, "_step", kill_actor_0_before_the_second_step)
    config = RunConfig(agents=4, **SHORT)
    lines = []
    summary = ray_link.run_ray(ray, Run(config, tmp_path / "run", plots=False, **QUIET), KEY, actors=2,
                               log=lines.append)
    dropped = sorted(int(line.split()[1].rstrip(":")) for line in lines if "its actor was lost" in line)
    assert dropped == [0, 2]                                   # actor 0 held agents 0 and 2
    assert summary["rounds"] == 2 and summary["agents_reported"] == 2 and summary["comparisons"] > 0
    assert not summary["errors"]
