"""The round part of `fedzo bench rollout`: a round's episodes on 1 and on N workers,
against what bare MuJoCo reaches on 1 and on N processes, and what each worker costs in memory.

The workload is what agent 0 of a default run (K = 5) runs in its first
`rounds` rounds: each round's 2·N·D episodes, under theta and theta + mu v
on its block, from the round's reset seeds (`ParS2ZPOAgent.round_episodes`).

- fedzo, 1 worker: `Rollouts(..., workers=1).run`, this process alone.
- fedzo, N workers: a pool of N processes (this one and N - 1 forked once,
  before the timing), as an agent with `--workers N` runs a round.
- raw, 1 process: bare `mj_step` replaying the controls the policy chose in
  those episodes, from the same initial states (as the per-task table's raw).
- raw, N processes (the limit): N processes forked once, each replaying the
  whole workload at the same time; its rate is N x the workload's steps over
  the time until the last one finishes. Nothing fedzo does with N processes
  can beat this, so fedzo N / raw N is the share of the limit reached.

The four loops are timed in interleaved batches (best of `repeats`), so a
busy spell on the machine meets all of them. Memory: for pools of 1, 2 and
4 workers, after one round has run on them, the unshared memory (USS:
Private_Clean + Private_Dirty in /proc/PID/smaps_rollup) of this process and
of each forked worker, and the pool's total PSS. A worker's USS is what it
alone holds (the pages it wrote or allocated); the agent's USS shrinks once
it has workers, because the pages they share with it count for nobody's USS,
so the cost of a worker is read from the total PSS: (total with N - total
with 1) / (N - 1).
"""
import os

import mujoco

from fedzo.edge.agent.memory import unshared_memory
from fedzo.edge.bench.rollout import record_episode
from fedzo.edge.bench.timing import best_seconds_each, ratio
from fedzo.edge.learning.agent_logic import ParS2ZPOAgent
from fedzo.edge.learning.algorithm import initial_store, load_actor
from fedzo.edge.learning.config import RunConfig
from fedzo.edge.policy.workers import Rollouts, usable_cores
from fedzo.edge.tasks import make

DEFAULT_ROUNDS = 3          # rounds of agent 0: 3 x 4 episodes of up to 1000 steps
REPEATS = 5                 # timed batches of each loop; the best counts
MEMORY_POOLS = (1, 2, 4)


def round_work(name, rounds):
    """(agent, [(variants, jobs) per round]) of agent 0 of a default run of task `name`."""
    config = RunConfig(task=name)
    actor = load_actor(config)
    agent = ParS2ZPOAgent(config, 0, initial_store(config, actor), make(name), actor, workers=1,
                          log=lambda *a: None)
    return agent, [agent.round_episodes(r) for r in range(rounds)]


def recorded_controls(task, policy, work):
    """Per episode of the workload: (qpos0, qvel0, controls), as the policy ran it."""
    episodes = []
    for variants, jobs in work:
        for variant, seed in jobs:
            policy.load(variants[variant])
            start, controls = record_episode(task, policy, seed)
            episodes.append((*start, controls))
    return episodes


def replay(task, episodes):
    """Bare MuJoCo over the recorded episodes (control written, then mj_step), in this process."""
    model, data = task.model, task.data
    ctrl, qpos, qvel, nstep = data.ctrl, data.qpos, data.qvel, task.frame_skip
    reset, forward, mj_step = mujoco.mj_resetData, mujoco.mj_forward, mujoco.mj_step
    for qpos0, qvel0, controls in episodes:
        reset(model, data)
        qpos[:] = qpos0
        qvel[:] = qvel0
        forward(model, data)
        for u in controls:
            ctrl[:] = u
            mj_step(model, data, nstep)


class ReplayProcesses:
    """N forked processes that each replay the whole workload when told to (the limit)."""

    def __init__(self, task, episodes, count):
        self.pipes, self.pids = [], []
        for _ in range(count):
            go_read, go_write = os.pipe()
            done_read, done_write = os.pipe()
            pid = os.fork()
            if pid == 0:                       # the child: replay on each byte, answer with one
                code = 0
                try:
                    os.close(go_write)
                    os.close(done_read)
                    while os.read(go_read, 1) == b"g":
                        replay(task, episodes)
                        os.write(done_write, b"d")
                except BaseException:          # noqa: BLE001 - a child must reach os._exit
                    code = 1
                finally:
                    os._exit(code)
            os.close(go_read)
            os.close(done_write)
            self.pipes.append((go_write, done_read))
            self.pids.append(pid)

    def run(self):
        """All replay at once; returns when the last one has finished."""
        for go, _ in self.pipes:
            os.write(go, b"g")
        for _, done in self.pipes:
            if os.read(done, 1) != b"d":
                raise RuntimeError("a replay process of the rollout bench died")

    def close(self):
        for go, done in self.pipes:
            os.close(go)
            os.close(done)
        for pid in self.pids:
            os.waitpid(pid, 0)
        self.pipes, self.pids = [], []


def memory(agent, work, pools=MEMORY_POOLS) -> list:
    """Per pool size, after one round has run on it: this process's and each forked worker's
    USS and PSS, the pool's total PSS (its physical memory, shared pages split among their
    users) and what each worker adds to it over the pool of one."""
    out = []
    variants, jobs = work[0]
    for workers in pools:
        rollouts = Rollouts(agent.task, agent.policy, workers, log=lambda *a: None)
        try:
            rollouts.run(variants, jobs)
            mine = unshared_memory(os.getpid())
            theirs = [f for f in (unshared_memory(pid) for pid in rollouts.pids()) if f]
        finally:
            rollouts.close()
        if not mine:
            continue                       # no smaps_rollup here (not Linux, or too old a kernel)
        total = mine["pss"] + sum(f["pss"] for f in theirs)
        out.append({"workers": workers, "agent_uss_bytes": mine["uss"], "agent_pss_bytes": mine["pss"],
                    "worker_uss_bytes": [f["uss"] for f in theirs], "total_pss_bytes": total})
    if out and out[0]["workers"] == 1:
        for m in out[1:]:
            m["pss_per_extra_worker_bytes"] = (m["total_pss_bytes"] - out[0]["total_pss_bytes"]) / (m["workers"] - 1)
    agent.policy.refresh(agent.store)
    return out


def measure(name="hopper", workers=None, rounds=None, min_seconds=0.0, repeats=None) -> dict:
    """One record: env steps per second of a round's episodes on 1 and `workers` processes
    (default: the usable cores), fedzo and raw, their ratios, and the workers' memory.
    `rounds` and `repeats` default to DEFAULT_ROUNDS and REPEATS."""
    workers = usable_cores() if workers is None else int(workers)
    rounds = DEFAULT_ROUNDS if rounds is None else rounds
    repeats = REPEATS if repeats is None else repeats
    agent, work = round_work(name, rounds)
    task, policy = agent.task, agent.policy
    episodes = recorded_controls(task, policy, work)
    steps = sum(len(controls) for _, _, controls in episodes)
    mem = memory(agent, work)
    one = Rollouts(task, policy, 1)
    many = Rollouts(task, policy, workers, log=lambda *a: None)
    raw_many = ReplayProcesses(task, episodes, workers)
    try:
        def fedzo_run(rollouts):
            def run():
                for variants, jobs in work:
                    rollouts.run(variants, jobs)
            return run
        seconds = best_seconds_each([fedzo_run(one), fedzo_run(many), lambda: replay(task, episodes),
                                     raw_many.run], min_seconds, repeats)
        died = many.deaths
    finally:
        many.close()
        raw_many.close()
    fedzo1, fedzo_n, raw1 = (steps / s for s in seconds[:3])
    raw_n = workers * steps / seconds[3]
    return {
        "task": name, "workers": workers, "usable_cores": usable_cores(), "rounds": rounds,
        "episodes": len(episodes), "env_steps": steps,
        "fedzo_1_steps_per_s": fedzo1, "fedzo_n_steps_per_s": fedzo_n,
        "raw_1_steps_per_s": raw1, "raw_n_steps_per_s": raw_n,
        "fedzo_1_over_raw_1": ratio(fedzo1, raw1), "fedzo_n_over_raw_n": ratio(fedzo_n, raw_n),
        "fedzo_speedup": ratio(fedzo_n, fedzo1), "raw_speedup": ratio(raw_n, raw1),
        "worker_deaths": died, "memory": mem,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def format_table(record) -> str:
    """The round record as a few readable lines."""
    r, mib = record, 2.0 ** 20
    lines = [
        f"a round's episodes on {r['task']}: agent 0 of a default run (K = 5), rounds 0-{r['rounds'] - 1}, "
        f"{r['episodes']} episodes, {r['env_steps']} env steps; {r['usable_cores']} usable cores, "
        f"load average {r['load_average']:.2f}",
        f"{'':<22}{'fedzo':>12}{'raw mj_step':>14}{'fedzo/raw':>11}",
        f"{'1 worker':<22}{r['fedzo_1_steps_per_s']:>12,.0f}{r['raw_1_steps_per_s']:>14,.0f}"
        f"{r['fedzo_1_over_raw_1']:>11.2f}   (goal >= 0.95)",
        f"{str(r['workers']) + ' workers':<22}{r['fedzo_n_steps_per_s']:>12,.0f}{r['raw_n_steps_per_s']:>14,.0f}"
        f"{r['fedzo_n_over_raw_n']:>11.2f}   (the limit: goal >= 0.85)",
        f"{'speed-up':<22}{r['fedzo_speedup']:>12.2f}{r['raw_speedup']:>14.2f}",
        "memory after one round (USS: unshared; PSS: shared pages split among their users):",
    ]
    for m in r["memory"]:
        line = (f"  {m['workers']} worker(s): total PSS {m['total_pss_bytes'] / mib:.1f} MiB; "
                f"agent USS {m['agent_uss_bytes'] / mib:.1f} MiB")
        if m["worker_uss_bytes"]:
            each = ", ".join(f"{u / mib:.1f}" for u in m["worker_uss_bytes"])
            line += (f"; forked workers' USS {each} MiB; each extra worker adds "
                     f"{m['pss_per_extra_worker_bytes'] / mib:.1f} MiB PSS (goal <= 4 MB)")
        lines.append(line)
    if r["worker_deaths"]:
        lines.append(f"  {r['worker_deaths']} worker(s) died during the bench")
    return "\n".join(lines)
