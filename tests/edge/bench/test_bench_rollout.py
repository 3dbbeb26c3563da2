"""`fedzo bench rollout`: the records' fields, which loop each figure times, and the raw replay
(never timing assertions)."""
import contextlib
import importlib.util
import io
import json
import sys

import mujoco
import numpy as np
import pytest

from fedzo.edge.bench import rollout as bench_rollout
from fedzo.edge.policy.mlp import Actor
from fedzo.edge.tasks import make

# DESIGN.md §10's fields, plus the constant-control reference of the issue.
FIELDS = {"task", "raw_steps_per_s", "fedzo_steps_per_s", "gymnasium_steps_per_s",
          "fedzo_over_raw", "fedzo_over_gymnasium", "raw_constant_steps_per_s", "fedzo_over_raw_constant"}


def _gymnasium_installed():
    return importlib.util.find_spec("gymnasium") is not None


def test_record_has_the_spec_fields():
    r = bench_rollout.measure("hopper", steps=1, min_seconds=0.0, repeats=1)
    assert set(r) == FIELDS and r["task"] == "hopper"
    assert r["raw_steps_per_s"] > 0 and r["fedzo_steps_per_s"] > 0 and r["raw_constant_steps_per_s"] > 0
    if _gymnasium_installed():
        assert r["gymnasium_steps_per_s"] > 0
    else:
        assert r["gymnasium_steps_per_s"] is None and r["fedzo_over_gymnasium"] is None
    json.dumps(r)  # plain numbers and None only


# Fake seconds for one run of the workload by each kind of loop.
LOOP_SECONDS = {"fedzo": 2.0, "raw": 1.0, "raw constant": 0.5, "gymnasium": 4.0}


def test_each_figure_is_the_workload_over_the_time_of_the_loop_it_names(monkeypatch):
    """A fake clock that times whatever the timed loop did, told apart by what it calls:
    fedzo's run_episode; bare mj_step on the task's own model, replaying the policy's
    controls or holding 0; or Gymnasium (mj_step on a model of its own). Every rate must
    be the workload's env steps over its own loop's time, and Gymnasium must step the
    same episodes as the others."""
    tasks, did = [], []                        # the bench's task; what the loop being timed did
    real_make, real_episode, real_step = bench_rollout.make, bench_rollout.run_episode, mujoco.mj_step

    def make(name):
        tasks.append(real_make(name))
        return tasks[-1]

    def run_episode(*args, **kwargs):
        did.append("fedzo")
        return real_episode(*args, **kwargs)

    def mj_step(model, data, nstep=1):
        if model is not tasks[0].model:
            did.append("gymnasium")
        else:
            did.append("raw" if data.ctrl.any() else "raw constant")
        real_step(model, data, nstep)

    monkeypatch.setattr(bench_rollout, "make", make)
    monkeypatch.setattr(bench_rollout, "run_episode", run_episode)
    monkeypatch.setattr(mujoco, "mj_step", mj_step)
    steps = {}                                 # env steps each kind of loop took

    def fake_best_seconds_each(loops, min_seconds=None, repeats=None):
        seconds = []
        for loop in loops:
            did.clear()
            loop()
            kind = "fedzo" if "fedzo" in did else max(set(did), key=did.count)
            steps[kind] = len(did)
            seconds.append(LOOP_SECONDS[kind])
        return seconds

    monkeypatch.setattr(bench_rollout, "best_seconds_each", fake_best_seconds_each)
    r = bench_rollout.measure("hopper", steps=300)
    work = steps["raw"]                        # one mj_step call per env step of the replay
    assert work >= 300 and steps["raw constant"] == work
    assert r["raw_steps_per_s"] == pytest.approx(work / LOOP_SECONDS["raw"])
    assert r["raw_constant_steps_per_s"] == pytest.approx(work / LOOP_SECONDS["raw constant"])
    assert r["fedzo_steps_per_s"] == pytest.approx(work / LOOP_SECONDS["fedzo"])
    assert r["fedzo_over_raw"] == pytest.approx(LOOP_SECONDS["raw"] / LOOP_SECONDS["fedzo"])
    assert r["fedzo_over_raw_constant"] == pytest.approx(LOOP_SECONDS["raw constant"] / LOOP_SECONDS["fedzo"])
    if _gymnasium_installed():
        assert steps["gymnasium"] == work
        assert r["gymnasium_steps_per_s"] == pytest.approx(work / LOOP_SECONDS["gymnasium"])
        assert r["fedzo_over_gymnasium"] == pytest.approx(LOOP_SECONDS["gymnasium"] / LOOP_SECONDS["fedzo"])


def test_without_gymnasium_its_figures_are_null(monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnasium", None)   # makes `import gymnasium` fail
    r = bench_rollout.measure("swimmer", steps=1, min_seconds=0.0, repeats=1)
    assert r["gymnasium_steps_per_s"] is None and r["fedzo_over_gymnasium"] is None
    assert r["fedzo_steps_per_s"] > 0 and r["fedzo_over_raw"] > 0
    assert "not installed" in bench_rollout.format_table([r])


def test_raw_replay_integrates_the_same_trajectory_as_the_rollout():
    task = make("walker2d")
    policy = Actor.load(bench_rollout.ACTOR_DIR / "walker2d.npz").policy(task.action_low, task.action_high)
    work = bench_rollout.Workload(task, policy, steps=1500)
    assert work.steps >= 1500 and len(work.seeds) == len(work.controls) >= 2
    assert work.steps == sum(len(c) for c in work.controls)
    bench_rollout.fedzo_loop(task, policy, work)()
    np.testing.assert_array_equal(task.data.qpos, work.final_qpos)
    bench_rollout.raw_loop(task, work)()
    np.testing.assert_array_equal(task.data.qpos, work.final_qpos)
    # the comparison can fail: one changed control ends somewhere else
    work.controls[-1][5] += 0.1
    bench_rollout.raw_loop(task, work)()
    assert not np.array_equal(task.data.qpos, work.final_qpos)


def test_cli_prints_one_json_list_and_a_table(monkeypatch):
    from fedzo.edge.bench import rounds
    monkeypatch.setattr(rounds, "DEFAULT_ROUNDS", 1)
    monkeypatch.setattr(bench_rollout, "DEFAULT_STEPS", 1)
    monkeypatch.setattr(bench_rollout, "DEFAULT_MIN_SECONDS", 0.0)
    monkeypatch.setattr(bench_rollout, "REPEATS", 1)
    from fedzo import cli
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["bench", "rollout", "--task", "halfcheetah", "--json"]) == 0
    records = json.loads(out.getvalue())
    # the tasks' records, then the round's (tests/edge/bench/test_bench_rounds.py)
    records, round_record = records[:-1], records[-1]
    assert round_record["kind"] == "round" and round_record["task"] == "halfcheetah"
    assert isinstance(records, list) and [r["task"] for r in records] == ["halfcheetah"]
    assert set(records[0]) == FIELDS
    table = bench_rollout.format_table(records)
    assert "halfcheetah" in table and "fedzo/raw" in table
