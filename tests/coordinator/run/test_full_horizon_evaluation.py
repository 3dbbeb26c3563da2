"""Evaluation at the task's own time limit, and at the training horizon when that is shorter."""
import json

import numpy as np
from small_runs import run_small

from fedzo.coordinator.run.evaluate import evaluate, summarise
from fedzo.edge.learning.algorithm import load_actor
from fedzo.edge.learning.config import RunConfig
from fedzo.edge.policy.rollout import run_episode
from fedzo.edge.tasks import make


def _actor_policy(task_name):
    task = make(task_name)
    low, high = task.model.actuator_ctrlrange.T
    return task, load_actor(RunConfig(task=task_name)).policy(low, high)


def test_one_rollout_gives_the_return_at_each_horizon():
    task, policy = _actor_policy("hopper")
    seeds = [3, 4]
    returns = evaluate(task, policy, seeds, [60, 1000])
    assert task.max_episode_steps == 1000                       # put back afterwards
    for i, seed in enumerate(seeds):
        for horizon in (60, 1000):
            task.max_episode_steps = horizon
            assert returns[horizon][i] == run_episode(task, policy, seed)[0]
    task.max_episode_steps = 1000
    assert np.all(returns[1000] > returns[60])                  # the actor survives past step 60


def test_an_episode_that_ends_early_has_one_return_at_every_later_cut():
    task, policy = _actor_policy("hopper")
    policy.biases[-1][:] = 50.0      # every joint pushed to its limit: hopper falls at once
    returns = evaluate(task, policy, [1], [400, 1000])
    task.max_episode_steps = 1000
    total, steps = run_episode(task, policy, 1)
    assert steps < 400
    assert returns[400][0] == returns[1000][0] == total


def test_summarise_reports_the_standard_error():
    s = summarise([1.0, 2.0, 3.0, 4.0])
    assert s["mean"] == 2.5 and s["episodes"] == 4
    assert np.isclose(s["se"], np.std([1, 2, 3, 4], ddof=1) / 2)


def test_a_run_trained_at_a_short_horizon_is_judged_at_the_time_limit(tmp_path):
    run, _, summary = run_small(tmp_path, horizon=50, agents=2, rounds=2, eval_episodes=3)
    assert summary["eval_horizon"] == 1000 and summary["train_horizon"] == 50
    assert summary["eval_episodes"] == 3
    # The packaged actor hops for the whole 1000 steps: far more than 50 steps can earn.
    assert summary["return_initial"] > 1000 > 300 > summary["return_initial_train_horizon"]
    assert len(summary["eval_returns_initial"]) == len(summary["eval_returns_final"]) == 3
    gains = np.subtract(summary["eval_returns_final"], summary["eval_returns_initial"])
    assert np.isclose(summary["gain"], summary["return_final"] - summary["return_initial"])
    assert np.isclose(summary["gain"], gains.mean())
    assert np.isclose(summary["gain_se"], gains.std(ddof=1) / np.sqrt(3))
    metrics = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    last = metrics[-1]
    assert last["return"] == summary["return_final"]
    assert last["return_train_horizon"] == summary["return_final_train_horizon"]
    assert last["return_se"] > 0


def test_a_full_horizon_run_has_no_second_horizon(tmp_path):
    _, _, summary = run_small(tmp_path, agents=2, rounds=1, eval_episodes=2, horizon=1000)
    assert summary["eval_horizon"] == summary["train_horizon"] == 1000
    assert "return_final_train_horizon" not in summary


def test_resume_keeps_the_initial_evaluation(tmp_path):
    """A resumed run's gain is measured against the evaluation made when it started."""
    _, _, whole = run_small(tmp_path, name="whole", agents=2, rounds=4, eval_episodes=2, horizon=40)
    run_small(tmp_path, name="cut", agents=2, rounds=2, eval_episodes=2, horizon=40)
    folder = tmp_path / "cut"
    config = json.loads((folder / "config.json").read_text())
    config["rounds"] = 4
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "summary.json").unlink()
    _, _, resumed = run_small(tmp_path, name="cut", resume=True, agents=2, rounds=4, eval_episodes=2,
                              horizon=40)
    for key in ("eval_returns_initial", "eval_returns_final", "gain", "return_final_train_horizon"):
        assert resumed[key] == whole[key], key


def test_fedzo_eval_scores_a_run_folder_to_the_time_limit(tmp_path):
    import subprocess
    import sys
    run_small(tmp_path, agents=2, rounds=2, horizon=60, eval_episodes=1)
    out = subprocess.run([sys.executable, "-m", "fedzo", "eval", "--run", str(tmp_path / "run"), "--episodes", "3"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    start, end = [line for line in out.stdout.splitlines() if "return" in line]
    assert "trained at 60 steps; 3 episodes to the 1000-step limit" in out.stdout
    assert start.strip().startswith("start:") and end.strip().startswith("round 2:")
    assert "0 of 3 end before the limit" in start               # the packaged actor hops to the end
    missing = subprocess.run([sys.executable, "-m", "fedzo", "eval", "--run", str(tmp_path / "nothing")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "not a run folder" in missing.stderr
    assert not (tmp_path / "nothing").exists()                   # nothing left behind
