"""The memory-budget check before joining counts what the agent will hold."""
import os

import pytest
from small_runs import KEY, run_small

from fedzo.edge.agent.budget import WORKER_BYTES, check, learning_state_bound, worker_bytes, workers_that_fit
from fedzo.edge.agent.memory import unshared_memory
from fedzo.edge.agent.refused import BudgetTooSmall
from fedzo.edge.policy.workers import Rollouts


@pytest.mark.parametrize("algo", ["par-s2zpo", "fedavg-s2zpo"])
def test_the_bound_before_the_block_is_known_covers_every_block(tmp_path, algo):
    run, agents, _ = run_small(tmp_path, agents=3, rounds=1, algo=algo)
    actual = [a.logic.learning_state_bytes for a in agents]
    bound = learning_state_bound(algo, run.store.d, 3, run.store.values.itemsize)
    assert bound == max(actual)                    # the largest block, exactly


def test_a_budget_is_checked_only_when_stated():
    check(0, 10**9, 10**9, "hopper")                              # 0: no budget
    check(2**30, 2**29, 2**20, "hopper")
    with pytest.raises(BudgetTooSmall, match="memory budget 1.0 MiB is below what this agent needs: 2.0 MiB"):
        check(2**20, 2**20, 2**20, "hopper")


def test_a_budget_holds_as_many_rollout_workers_as_fit_and_never_fewer_than_one():
    d, floor, learning = 5123, 60 << 20, 40_000
    extra = worker_bytes(d)
    assert extra == WORKER_BYTES + 8 * d
    assert workers_that_fit(0, floor, learning, d, 4) == 4                       # no budget: all
    assert workers_that_fit(floor + learning + 3 * extra, floor, learning, d, 8) == 4
    assert workers_that_fit(floor + learning + 3 * extra - 1, floor, learning, d, 8) == 3
    assert workers_that_fit(floor + learning + 10 * extra, floor, learning, d, 2) == 2   # no more than asked
    assert workers_that_fit(floor, floor, learning, d, 4) == 1        # the agent alone: check() decides


def test_an_agent_whose_budget_holds_fewer_workers_runs_with_those_and_votes_the_same(tmp_path, monkeypatch):
    """--workers 3 under a budget that holds two processes: two, said in the log, same votes."""
    from small_runs import small_config

    from fedzo.coordinator.run.lifecycle import Run
    from fedzo.coordinator.transports.inproc import run_inproc
    from fedzo.edge.agent import memory
    from fedzo.edge.agent.runtime import AgentRuntime

    floor = 100 << 20
    monkeypatch.setattr(memory, "current_rss_bytes", lambda: floor)     # a floor the test knows
    config = small_config(agents=2, rounds=2, batch=2, comparisons=3, horizon=100)
    d = 5123                                                            # hopper's default policy
    budget_bytes = floor + learning_state_bound(config.algo, d, 2, 2) + worker_bytes(d) + 1000
    records = {}
    for name, workers, budget_bytes_now in (("one", 1, 0), ("budget", 3, budget_bytes)):
        said = []
        run = Run(config, tmp_path / name, log=lambda *a: None)
        agents = [AgentRuntime(task=config.task, workers=workers, memory_budget=budget_bytes_now,
                               log=said.append) for _ in range(2)]
        run_inproc(run, agents, KEY, log=lambda *a: None)
        records[name] = [(r["votes"], r["theta_hash"]) for r in run.folder.metrics()]
        if workers > 1:
            assert sum("holds 2 rollout processes, not 3" in line for line in said) == 2
    assert records["budget"] == records["one"]


@pytest.mark.skipif(not unshared_memory(os.getpid()), reason="this system does not say what a process shares")
def test_a_report_counts_what_rollout_workers_hold(tmp_path, monkeypatch):
    from fedzo.edge.agent import memory
    monkeypatch.setattr(memory, "peak_rss_bytes", lambda: 100 << 20)   # the agent process's own peak
    run, agents, _ = run_small(tmp_path, agents=1, rounds=1)
    logic = agents[0].logic
    assert agents[0].report().peak_rss == 100 << 20                  # no workers: the process alone
    logic.rollouts = Rollouts(logic.task, logic.policy, workers=2, log=lambda *a: None)
    try:
        # One worker's unshared pages on top (how many depends on this test process's heap,
        # which the fork shares copy-on-write, so no bound here).
        assert agents[0].report().peak_rss > 100 << 20
    finally:
        logic.rollouts.close()
