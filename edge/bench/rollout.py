"""`fedzo bench rollout`: env steps per second of fedzo's rollout, against the
simulator's own limit and against Gymnasium, measured in the same run.

All three loops run the same workload: whole episodes from fixed reset
seeds, as many as it takes to reach at least `steps` env steps, with every
reset counted where it happens.

- fedzo: `fedzo.edge.policy.rollout.run_episode`, the shipped actor's 64-64 policy acting
  on every observation of an `fedzo.edge.tasks` task.
- raw: only MuJoCo, `mj_step(model, data, nstep=frame_skip)` in a Python loop
  with the control of each step written straight into `data.ctrl`. The
  controls are those the policy chose in the fedzo loop, replayed from the
  same initial states, so the simulator integrates exactly the same
  trajectory (a constant control would let the robot fall and lie still,
  whose contacts cost a different amount per step). This is the most a
  Python loop around MuJoCo can do with this workload.
- gymnasium: `gymnasium.make("Hopper-v5")` etc. with the same policy, when
  Gymnasium is installed (else null). Its tasks match fedzo's step for step,
  so it runs the same episodes too.

Each figure is the workload's step count divided by the best time of it,
the three loops timed in interleaved batches (`fedzo.edge.bench.timing.
best_seconds_each`), so the ratios compare like with like within one run.
"""
import contextlib
import os
import sys
import tempfile

import mujoco
import numpy as np

from fedzo.edge.bench.timing import best_seconds_each, ratio
from fedzo.edge.learning import streams
from fedzo.edge.learning.algorithm import ACTOR_DIR
from fedzo.edge.policy.mlp import Actor
from fedzo.edge.policy.rollout import run_episode
from fedzo.edge.tasks import TASK_NAMES, make

GYM_IDS = {"hopper": "Hopper-v5", "halfcheetah": "HalfCheetah-v5",
           "walker2d": "Walker2d-v5", "swimmer": "Swimmer-v5"}
DEFAULT_STEPS = 2000        # per workload: two hopper episodes, one reset between them
DEFAULT_MIN_SECONDS = 0.3   # per timed batch: 5 batches x 3 loops x 4 tasks, about half a minute
REPEATS = 5


def _policy(task, actor_path=None):
    """The shipped actor's policy for `task` (its control range applied)."""
    actor = Actor.load(actor_path or ACTOR_DIR / f"{task.name}.npz")
    if actor.task != task.name:
        raise ValueError(f"{actor_path} is an actor for {actor.task}, not {task.name}")
    return actor.policy(task.action_low, task.action_high)


def record_episode(task, policy, seed) -> tuple:
    """One episode from `seed`: ((qpos0, qvel0), the list of controls the policy chose)."""
    obs = task.reset(seed)
    start = (task.data.qpos.copy(), task.data.qvel.copy())
    controls = []
    while True:
        action = policy.act(obs)
        controls.append(action.copy())
        obs, _, terminated, truncated = task.step(action)
        if terminated or truncated:
            return start, controls


class Workload:
    """The episodes every loop runs: their reset seeds, and the controls the
    policy chose with the initial states they start from (for the raw replay)."""

    def __init__(self, task, policy, steps):
        if steps < 1:
            raise ValueError("the rollout bench needs at least one step")
        self.seeds, self.controls, self.starts = [], [], []
        self.steps = 0
        while self.steps < steps:
            seed = streams.eval_seeds(0, len(self.seeds) + 1)[-1]
            start, controls = record_episode(task, policy, seed)
            self.starts.append(start)
            self.seeds.append(seed)
            self.controls.append(np.array(controls))
            self.steps += len(controls)
        # where every loop ends; the raw replay is checked against it
        self.final_qpos = task.data.qpos.copy()


def fedzo_loop(task, policy, work):
    """A callable running the workload's episodes with fedzo's own rollout."""
    seeds = work.seeds

    def run():
        for seed in seeds:
            run_episode(task, policy, seed)
    return run


def raw_loop(task, work, constant=None):
    """A callable running bare MuJoCo over the workload's episodes (same starts and
    lengths): replaying the policy's controls, or holding `constant` throughout.

    The constant-control rate (the issue's original reference) depends on where
    a constant control drives the robot (falls and contacts cost more per
    step), which is why the replay is the main reference; both are reported.
    """
    model, data = task.model, task.data
    ctrl, qpos, qvel, nstep = data.ctrl, data.qpos, data.qvel, task.frame_skip
    reset, forward, mj_step = mujoco.mj_resetData, mujoco.mj_forward, mujoco.mj_step
    episodes = [(start, list(controls)) for start, controls in zip(work.starts, work.controls)]

    def run():
        for (qpos0, qvel0), controls in episodes:
            reset(model, data)
            qpos[:] = qpos0
            qvel[:] = qvel0
            forward(model, data)
            if constant is None:
                for u in controls:
                    ctrl[:] = u
                    mj_step(model, data, nstep)
            else:
                ctrl[:] = constant
                for _ in range(len(controls)):
                    mj_step(model, data, nstep)
    return run


@contextlib.contextmanager
def _compiling_quietly():
    """Build Gymnasium's model where MuJoCo's complaints about it go nowhere.

    Its half_cheetah.xml uses the deprecated settotalmass, and MuJoCo
    reports that on the process's stderr and in MUJOCO_LOG.TXT in the
    working directory: neither belongs in this bench's output or the user's
    folder. Exceptions still propagate with their messages.
    """
    old_cwd = os.getcwd()
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "stderr.txt"), "wb") as sink:
            os.dup2(sink.fileno(), 2)
            os.chdir(tmp)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved_stderr, 2)
                os.close(saved_stderr)
                os.chdir(old_cwd)


def gymnasium_env(name):
    """`gymnasium.make` of the task's v5 environment, or None without Gymnasium."""
    try:
        import gymnasium
    except ImportError:
        return None
    try:
        with _compiling_quietly():
            return gymnasium.make(GYM_IDS[name])
    except gymnasium.error.DependencyNotInstalled:
        return None


def gymnasium_loop(env, policy, work):
    """A callable running the workload through a Gymnasium env."""
    act, step, reset, seeds = policy.act, env.step, env.reset, work.seeds

    def run():
        # the same loop as fedzo.edge.policy.rollout.run_episode, on Gymnasium's API
        for seed in seeds:
            obs, _ = reset(seed=seed)
            total = 0.0
            while True:
                obs, reward, terminated, truncated, _ = step(act(obs))
                total += reward
                if terminated or truncated:
                    break
    return run


def measure(name, steps=None, min_seconds=None, repeats=None, actor_path=None) -> dict:
    """One record for task `name`: raw, fedzo and Gymnasium env steps per second.

    `steps` (at least this many env steps of whole episodes), `min_seconds`
    (per timed batch) and `repeats` (timed batches, the best one counts)
    default to the module's DEFAULT_STEPS, DEFAULT_MIN_SECONDS and REPEATS;
    `actor_path` to the shipped actor of the task.
    """
    steps = DEFAULT_STEPS if steps is None else steps
    min_seconds = DEFAULT_MIN_SECONDS if min_seconds is None else min_seconds
    repeats = REPEATS if repeats is None else repeats
    task = make(name)
    policy = _policy(task, actor_path)
    work = Workload(task, policy, steps)

    # the constant-control loop runs before the replay, so the replay still
    # ends where the fedzo trajectory ended (checked below)
    loops = [fedzo_loop(task, policy, work), raw_loop(task, work, constant=0.0), raw_loop(task, work)]
    env = gymnasium_env(name)
    if env is not None:
        loops.append(gymnasium_loop(env, _policy(task, actor_path), work))
    try:
        # interleaved batches: a busy spell on a shared machine hits all three
        seconds = best_seconds_each(loops, min_seconds, repeats)
    finally:
        if env is not None:
            env.close()
    # the raw loop ran after the fedzo loop in every round, so the task's
    # state is where its last replay ended
    if not np.array_equal(task.data.qpos, work.final_qpos):
        raise RuntimeError(f"{name}: the raw replay left the fedzo trajectory")
    fedzo_rate, constant_rate, raw_rate = (work.steps / seconds[i] for i in range(3))
    gym_rate = work.steps / seconds[3] if env is not None else None
    return {
        "task": name,
        "raw_steps_per_s": raw_rate,
        "raw_constant_steps_per_s": constant_rate,
        "fedzo_over_raw_constant": ratio(fedzo_rate, constant_rate),
        "fedzo_steps_per_s": fedzo_rate,
        "gymnasium_steps_per_s": gym_rate,
        "fedzo_over_raw": ratio(fedzo_rate, raw_rate),
        "fedzo_over_gymnasium": ratio(fedzo_rate, gym_rate),
    }


def run(tasks=TASK_NAMES, steps=None, min_seconds=None) -> list:
    """One record per task, in the order given (see `measure` for the defaults)."""
    return [measure(name, steps, min_seconds) for name in tasks]


def format_table(records) -> str:
    """A readable table of the records."""
    def num(x, fmt):
        return "-" if x is None else format(x, fmt)
    lines = [f"env steps per second with the 64-64 policy in the loop (raw: MuJoCo alone on the "
             f"same trajectory; raw const: MuJoCo alone, control 0); {os.cpu_count()} CPU cores",
             f"{'task':<13}{'raw':>10}{'raw const':>11}{'fedzo':>10}{'gymnasium':>11}{'fedzo/raw':>11}"
             f"{'fedzo/const':>12}{'fedzo/gym':>11}"]
    for r in records:
        lines.append(
            f"{r['task']:<13}{num(r['raw_steps_per_s'], '10,.0f')}{num(r['raw_constant_steps_per_s'], '11,.0f')}"
            f"{num(r['fedzo_steps_per_s'], '10,.0f')}{num(r['gymnasium_steps_per_s'], '11,.0f')}"
            f"{num(r['fedzo_over_raw'], '11.2f')}{num(r['fedzo_over_raw_constant'], '12.2f')}"
            f"{num(r['fedzo_over_gymnasium'], '11.2f')}")
    if any(r["gymnasium_steps_per_s"] is None for r in records):
        lines.append("gymnasium: not installed (pip install 'gymnasium[mujoco]' to compare)")
    return "\n".join(lines)
