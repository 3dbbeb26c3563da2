"""Policy sizes: `fedzo pretrain --hidden` and runs with `hidden` (d follows on every side)."""
import numpy as np
import pytest

from fedzo.cli import main
from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.tools.pretrain import ARSSettings, pretrain
from fedzo.edge.learning.config import ConfigError, RunConfig
from fedzo.edge.learning.layout import mlp_param_count
from fedzo.edge.policy.mlp import Actor
from small_runs import run_small

TINY = dict(iterations=1, directions=2, top=1, workers=1, seed=3)


@pytest.fixture(scope="module")
def small_actor(tmp_path_factory):
    actor = pretrain("swimmer", ARSSettings(**TINY, hidden=(8, 4)), log=lambda *a: None)
    path = tmp_path_factory.mktemp("actor") / "swimmer-8-4.npz"
    actor.save(path)
    return actor, path


def test_pretrain_makes_an_actor_of_the_asked_size_and_repeats_bit_for_bit(small_actor):
    actor, path = small_actor
    assert actor.hidden == (8, 4) and actor.theta.size == mlp_param_count(8, 2, (8, 4)) == 118
    loaded = Actor.load(path)
    assert loaded.hidden == (8, 4) and loaded.info["hidden"] == [8, 4]
    again = pretrain("swimmer", ARSSettings(**TINY, hidden=(8, 4)), log=lambda *a: None)
    assert np.array_equal(again.theta, actor.theta)
    assert pretrain("swimmer", ARSSettings(**TINY, hidden=(3,)), log=lambda *a: None).theta.size == 8 * 3 + 3 + 3 * 2 + 2


@pytest.mark.parametrize("algo", ["par-s2zpo", "fedavg-s2zpo"])
def test_a_run_with_that_size_trains_and_every_replica_agrees(small_actor, tmp_path, algo):
    _, path = small_actor
    run, agents, summary = run_small(tmp_path, task="swimmer", actor=str(path), hidden="8,4", agents=2,
                                     rounds=2, horizon=30, mu=0.05, algo=algo)
    assert run.store.d == 118
    assert all(a.logic.store.digest() == run.store.digest() for a in agents)
    # the memory figures follow d: theta (int16), its scratch, the float32 copy (and FedAvg's buffers)
    assert all(a["learning_state_bytes"] < 118 * (2 + 2 + 4 + 12) for a in summary["per_agent"])


def test_an_actor_of_another_size_is_refused_with_one_line(small_actor, tmp_path):
    _, path = small_actor
    with pytest.raises(ValueError, match=r"has hidden layers 8,4, the run 64,64 \(set hidden to 8,4"):
        Run(RunConfig(task="swimmer", actor=str(path)), tmp_path / "r", log=lambda *a: None)
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


@pytest.mark.parametrize("text", ["", "64,", "0,8", "8;8", "-1", "5000", ",".join(["2"] * 17)])
def test_bad_hidden_sizes_are_named(text):
    with pytest.raises(ConfigError, match="^hidden must be"):
        RunConfig(hidden=text)


def test_pretrain_command_refuses_bad_hidden_in_one_line(tmp_path):
    with pytest.raises(SystemExit, match="^fedzo pretrain: --hidden must be layer widths"):
        main(["pretrain", "--task", "swimmer", "--hidden", "32,x", "--out", str(tmp_path / "a.npz")])


def test_an_agent_whose_policy_would_have_another_d_refuses_the_run():
    import json

    from fedzo.edge.agent.runtime import AgentRefused, AgentRuntime
    from fedzo.edge.learning.config import welcome_config
    from fedzo.edge.protocol import Welcome
    config = welcome_config(RunConfig(task="swimmer", hidden="8,4"), [0.0] * 8, [1.0] * 8, "int16", 10)
    welcome = Welcome(0, 0, 1, 119, 0, 0, bytes(8), json.dumps(config))
    with pytest.raises(AgentRefused, match="d = 119 parameters; hidden 8,4 on this agent's swimmer .* gives 118"):
        AgentRuntime(log=lambda *a: None).handle(welcome)
