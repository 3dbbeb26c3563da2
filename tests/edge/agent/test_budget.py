"""The memory-budget check before joining counts what the agent will hold."""
import pytest
from small_runs import run_small

from fedzo.edge.agent.budget import check, learning_state_bound
from fedzo.edge.agent.refused import BudgetTooSmall


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
