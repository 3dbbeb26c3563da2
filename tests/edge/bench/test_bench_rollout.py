"""`fedzo bench rollout`: the records' fields, ratios and the raw replay (never timing assertions)."""
import contextlib
import importlib.util
import io
import json
import sys

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


def test_record_has_the_spec_fields_and_consistent_ratios():
    r = bench_rollout.measure("hopper", steps=1, min_seconds=0.0, repeats=1)
    assert set(r) == FIELDS and r["task"] == "hopper"
    assert r["raw_steps_per_s"] > 0 and r["fedzo_steps_per_s"] > 0
    assert r["fedzo_over_raw"] == pytest.approx(r["fedzo_steps_per_s"] / r["raw_steps_per_s"])
    assert r["fedzo_over_raw_constant"] == pytest.approx(r["fedzo_steps_per_s"] / r["raw_constant_steps_per_s"])
    if _gymnasium_installed():
        assert r["gymnasium_steps_per_s"] > 0
        assert r["fedzo_over_gymnasium"] == pytest.approx(
            r["fedzo_steps_per_s"] / r["gymnasium_steps_per_s"])
    else:
        assert r["gymnasium_steps_per_s"] is None and r["fedzo_over_gymnasium"] is None
    json.dumps(r)  # plain numbers and None only


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
    monkeypatch.setattr(bench_rollout, "DEFAULT_STEPS", 1)
    monkeypatch.setattr(bench_rollout, "DEFAULT_MIN_SECONDS", 0.0)
    monkeypatch.setattr(bench_rollout, "REPEATS", 1)
    from fedzo import cli
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["bench", "rollout", "--task", "halfcheetah", "--json"]) == 0
    records = json.loads(out.getvalue())
    assert isinstance(records, list) and [r["task"] for r in records] == ["halfcheetah"]
    assert set(records[0]) == FIELDS
    table = bench_rollout.format_table(records)
    assert "halfcheetah" in table and "fedzo/raw" in table
