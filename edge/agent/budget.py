"""Does the run fit this agent's memory budget? Decided before the agent takes a slot.

The agent needs its floor (the resident memory of Python, NumPy, MuJoCo and
the task's model, measured once the task is loaded) plus its learning state
(theta, its scratch, the policy's float copy, and for FedAvg the upload
buffer; agent_logic's `learning_state_bytes`). The Challenge carries d and
the run's terms (task, algo, agents, dtype), so the agent can load the task
and add these up before it
sends its Join (issue 12: an agent refused only after it joined had let the
run start with a voter that was about to leave). Its block is not known
before the Welcome, so Par-S2ZPO counts the largest block: never less than
what `learning_state_bytes` reports once the block is assigned. After the
Welcome the runtime checks the exact figure again.

Rollout workers (`--workers`, edge/policy/workers.py) are forked from the
agent, so they share its floor copy-on-write; each costs what it does not
share: WORKER_BYTES, measured by `fedzo bench rollout` at 2.2-3.1 MiB
unshared (USS) per worker on the four tasks and rounded up, plus the two
float32 parameter vectors it is sent each round. A budget that fits the agent
but not all its workers gets fewer workers, never a refusal: the run is the
same bit for bit with any number (workers_that_fit).
"""
import numpy as np

from fedzo.edge.agent import memory
from fedzo.edge.agent.refused import BudgetTooSmall
from fedzo.edge.learning.layout import partition
from fedzo.edge.tasks import make

FLOAT_BYTES = 4      # the policy's copy of theta and the FedAvg upload are float32
WORKER_BYTES = 4 << 20   # what a forked rollout worker does not share (measured 2.2-3.1 MiB), rounded up


def learning_state_bound(algo: str, d: int, agents: int, itemsize: int) -> int:
    """Bytes of learning state of any block of a run (the largest block for Par-S2ZPO)."""
    policy = FLOAT_BYTES * d
    if algo == "fedavg-s2zpo":
        return d * itemsize + d * itemsize + FLOAT_BYTES * d + policy    # store, scratch, upload
    largest = max(stop - start for start, stop in partition(d, agents))
    return d * itemsize + largest * itemsize + policy                    # store, block scratch


def worker_bytes(d: int) -> int:
    """Memory one more rollout worker costs: its unshared pages and the two parameter
    vectors (theta and theta + mu v, float32) it is sent each round."""
    return WORKER_BYTES + 2 * FLOAT_BYTES * d


def workers_that_fit(budget: int, floor: int, learning: int, d: int, wanted: int) -> int:
    """How many of `wanted` rollout processes (the agent's own included) a budget holds:
    at least 1 (whether the agent itself fits is check()'s to say), `wanted` without a budget."""
    if not budget:
        return wanted
    spare = budget - floor - learning
    return max(1, min(wanted, 1 + spare // worker_bytes(d)))


def check(budget: int, floor: int, learning: int, task_name: str) -> None:
    """BudgetTooSmall if floor + learning exceeds a stated budget (0: no budget)."""
    needed = floor + learning
    if budget and needed > budget:
        raise BudgetTooSmall(
            f"memory budget {budget / 2**20:.1f} MiB is below what this agent needs: "
            f"{needed / 2**20:.1f} MiB (floor {floor / 2**20:.1f} MiB for Python, NumPy, "
            f"MuJoCo and the {task_name} model, plus {learning} bytes of learning state)")


def check_terms(budget: int, d: int, terms: dict, build_task=make):
    """Before joining: load the run's task (with `build_task`, the agent's rule for task
    specs), measure the floor and check the budget.

    Returns (task spec, the loaded task): the runtime keeps it for the Welcome. Raises
    BudgetTooSmall, or ValueError for terms it cannot read.
    """
    try:
        name, algo = str(terms["task"]), str(terms["algo"])
        blocks = int(terms.get("blocks", terms["agents"]))    # a fleet names K; otherwise K = n
        itemsize = np.dtype(terms["dtype"]).itemsize
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"the challenge's terms cannot be read ({exc!r}): {terms}") from None
    task = build_task(name)
    floor = memory.current_rss_bytes()
    check(budget, floor, learning_state_bound(algo, d, blocks, itemsize), name)
    return name, task
