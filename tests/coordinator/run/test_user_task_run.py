"""A run of a user's task: both sides build it, the Welcome carries the compiled model's
hash, and an agent whose model differs (or that was not told to load it) refuses."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from serving import serve_in_thread, Stop
from small_runs import KEY, run_small
from waiting import PATIENCE

from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.server import Server
from fedzo.edge.agent.runtime import AgentRefused, AgentRuntime
from fedzo.edge.agent.tcp import run_agent_tcp
from fedzo.edge.learning.config import ConfigError, RunConfig
from fedzo.edge.tasks import make
from fedzo.edge.tasks.model_hash import model_hash

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "cartpole"
USER_TASK = dict(task=str(EXAMPLE / "cartpole.xml"), actor=str(EXAMPLE / "cartpole.npz"), hidden="32,32",
                 panel_scale=55.0, horizon=100)


def test_a_user_task_runs_and_every_replica_agrees(tmp_path):
    run, agents, summary = run_small(tmp_path, agents=2, rounds=2, **USER_TASK)
    welcome = json.loads(run.runtime.welcome_json)
    assert welcome["model"] == model_hash(make(USER_TASK["task"]).model).hex()
    assert summary["rounds"] == 2 and summary["eval_horizon"] == 500      # the task's own limit
    assert summary["train_horizon"] == 100
    assert all(a.logic.store.digest() == run.store.digest() for a in agents)


def test_training_never_runs_past_the_task_own_limit(tmp_path):
    _, agents, summary = run_small(tmp_path, agents=1, rounds=1, **{**USER_TASK, "horizon": 1000})
    assert summary["train_horizon"] == 500 and agents[0].logic.task.max_episode_steps == 500


def test_without_a_panel_scale_the_run_is_refused_before_it_starts(tmp_path):
    with pytest.raises(ConfigError, match="^panel_scale must be given for task .*cartpole.xml"):
        Run(RunConfig(**{**USER_TASK, "panel_scale": 0.0}), tmp_path / "r", log=lambda *a: None)


def test_a_user_task_without_an_actor_is_refused_in_one_line(tmp_path):
    with pytest.raises(ValueError, match="has no packaged actor: set actor"):
        Run(RunConfig(**{**USER_TASK, "actor": ""}), tmp_path / "r", log=lambda *a: None)


def refusal(tmp_path, agent_task):
    """Serve the example over TCP to one agent told `agent_task`; (what the agent raised,
    the coordinator's log)."""
    run = Run(RunConfig(agents=1, rounds=1, batch=1, eval_episodes=1, seed=3, **USER_TASK),
              tmp_path / "run", log=lambda *a: None)
    lines = []
    server = Server(run, KEY, log=lines.append)
    run.runtime.log = lines.append

    def check():
        if any("error" in line and "differs" in line or "loads one only" in line for line in lines):
            raise Stop
    thread, errors = serve_in_thread(server, check)
    with pytest.raises(AgentRefused) as caught:
        run_agent_tcp(server.address, KEY, AgentRuntime(log=lambda *a: None, task=agent_task),
                      reconnect_seconds=5.0)
    thread.join(PATIENCE)
    assert not thread.is_alive() and not errors
    return str(caught.value), lines


def test_an_agent_whose_model_differs_refuses_and_the_coordinator_hears_why(tmp_path):
    other = tmp_path / "mine"
    other.mkdir()
    shutil.copy(EXAMPLE / "cartpole.task.json", other)
    (other / "cartpole.xml").write_text((EXAMPLE / "cartpole.xml").read_text().replace('gear="20"', 'gear="25"'))
    text, lines = refusal(tmp_path, str(other / "cartpole.xml"))
    theirs, mine = (model_hash(make(str(p)).model).hex() for p in (EXAMPLE / "cartpole.xml", other / "cartpole.xml"))
    assert text == (f"compiled model {mine} here differs from the coordinator's {theirs} for task "
                    f"{USER_TASK['task']}: both sides need the same MJCF and MuJoCo")
    assert any(f"compiled model {mine} here differs" in line for line in lines)


def test_an_agent_not_told_to_load_the_file_refuses(tmp_path):
    text, lines = refusal(tmp_path, None)
    assert "is an MJCF file; an agent loads one only when started with --task" in text
    assert any("loads one only" in line for line in lines)


def test_a_task_whose_welcome_would_not_fit_the_wire_is_refused_before_it_starts(tmp_path):
    """Observation normalisation travels in the Welcome's config (at most 8192 bytes)."""
    from fedzo.edge.policy.mlp import Actor
    wide = tmp_path / "wide"
    wide.mkdir()
    description = json.loads((EXAMPLE / "cartpole.task.json").read_text())
    description["observation"] = ["qpos", "qvel"] * 100                    # 400 observations
    (wide / "cartpole.task.json").write_text(json.dumps(description))
    shutil.copy(EXAMPLE / "cartpole.xml", wide)
    actor = Actor("cartpole", 400, 1, np.zeros(400 * 8 + 8 + 8 + 1, np.float32), np.full(400, 0.123456789),
                  np.full(400, 1.23456789), hidden=(8,))
    actor.save(tmp_path / "wide.npz")
    config = RunConfig(**{**USER_TASK, "task": str(wide / "cartpole.xml"), "actor": str(tmp_path / "wide.npz"),
                          "hidden": "8"})
    with pytest.raises(ValueError, match=r"the Welcome's config would be \d+ bytes, more than the 8192 .* "
                                         r"has 400 observations"):
        Run(config, tmp_path / "r", log=lambda *a: None)
