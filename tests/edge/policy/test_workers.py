"""Parallel rollouts (edge/policy/workers.py, issue 15 item 1): the same votes and the same
theta with 1 or N workers, on every link; a worker that dies or fails is reported, never hangs."""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from small_runs import KEY, small_config
from waiting import PATIENCE, wait_until

from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.inproc import run_inproc
from fedzo.coordinator.transports.tcp import simulate_tcp
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.learning import streams
from fedzo.edge.learning.agent_logic import ParS2ZPOAgent
from fedzo.edge.learning.algorithm import ACTOR_DIR, initial_store, load_actor
from fedzo.edge.learning.config import RunConfig
from fedzo.edge.learning.preference import CoinFlip
from fedzo.edge.policy.mlp import Actor
from fedzo.edge.policy.rollout import run_episode
from fedzo.edge.policy.workers import Rollouts, RolloutError, check_workers
from fedzo.edge.tasks import make
from fedzo.edge.tasks.hopper import Hopper
from fedzo.firmware_sim.profiles import get_profile
from fedzo.firmware_sim.simulate import simulate_boards

QUIET = dict(log=lambda *a: None)
# Several comparisons of two episodes each and a short horizon: 12 episodes per agent
# and round, enough to keep three processes busy, and some hopper episodes fall early.
CONFIG = dict(agents=2, rounds=3, batch=2, comparisons=3, horizon=150)


def _record(run):
    """Each round's votes and theta hash, as the coordinator logged them."""
    return [(r["votes"], r["theta_hash"]) for r in run.folder.metrics()]


def _inproc(tmp_path, name, workers, **overrides):
    config = small_config(**{**CONFIG, **overrides})
    run = Run(config, tmp_path / name, **QUIET)
    agents = [AgentRuntime(task=config.task, workers=workers, **QUIET) for _ in range(config.agents)]
    summary = run_inproc(run, agents, KEY, **QUIET)
    return run, agents, summary


@pytest.mark.parametrize("algo", ["par-s2zpo", "fedavg-s2zpo"])
def test_votes_and_theta_do_not_depend_on_the_number_of_workers(tmp_path, algo):
    one, _, one_summary = _inproc(tmp_path, "one", 1, algo=algo)
    three, agents, three_summary = _inproc(tmp_path, "three", 3, algo=algo)
    assert len(_record(one)) == CONFIG["rounds"]
    assert _record(three) == _record(one)
    assert three_summary["theta_hash"] == one_summary["theta_hash"]
    assert (three_summary["episodes"], three_summary["env_steps"]) == (one_summary["episodes"],
                                                                       one_summary["env_steps"])
    # the run's end stopped the workers
    for agent in agents:
        assert agent.logic.rollouts.pids() == []


def test_tcp_and_throttled_serial_agents_with_workers_agree_with_one_worker(tmp_path):
    one, _, reference = _inproc(tmp_path, "one", 1)
    tcp_run = Run(small_config(**CONFIG), tmp_path / "tcp", **QUIET)
    summary = simulate_tcp(tcp_run, KEY, agent_args=("--workers", "2"), timeout=4 * PATIENCE, **QUIET)
    assert _record(tcp_run) == _record(one) and summary["theta_hash"] == reference["theta_hash"]
    # simulated serial boards under the CPU throttle, each agent with two workers
    boards_run = Run(small_config(**CONFIG), tmp_path / "boards", **QUIET)
    profile = get_profile("pi-zero-2w").with_overrides(cpu_factor=1.5)
    summary = simulate_boards(boards_run, KEY, profile, timeout=6 * PATIENCE, agent_args=("--workers", "2"),
                              **QUIET)
    assert _record(boards_run) == _record(one) and summary["theta_hash"] == reference["theta_hash"]
    assert all(b["status"] == "ok" and b["stopped_seconds"] > 0 for b in summary["boards"])


def _hopper_policy(task):
    actor = Actor.load(ACTOR_DIR / "hopper.npz")
    return actor, actor.policy(task.action_low, task.action_high)


def _variants(actor):
    rng = np.random.default_rng(3)
    return (actor.theta, (actor.theta + 0.01 * rng.standard_normal(actor.theta.size)).astype(np.float32))


def _jobs(count=10):
    seeds = streams.reset_seeds(1, 0, 0, count // 2)
    return [(v, s) for v in (0, 1) for s in seeds]


def _reference(task, policy, variants, jobs):
    out = []
    for variant, seed in jobs:
        policy.load(variants[variant])
        out.append(run_episode(task, policy, seed))
    return out


class _DiesInWorkers(Hopper):
    """A hopper whose reset kills the process it runs in once a file exists (the workers
    are forked copies: a file is what they all see), but never the agent."""

    deadly_flag = None
    agent_pid = None

    def reset(self, seed=None):
        if self.deadly_flag.exists() and os.getpid() != self.agent_pid:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().reset(seed)


def _dead(pid) -> bool:
    """True once `pid` has exited (a zombie until its parent reaps it, or gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in "ZX"
    except FileNotFoundError:
        return True


def test_a_worker_that_dies_is_reported_and_its_episodes_run_elsewhere(tmp_path):
    task = _DiesInWorkers()
    task.deadly_flag = tmp_path / "die"
    task.agent_pid = os.getpid()
    task.max_episode_steps = 100
    actor, policy = _hopper_policy(task)
    variants, jobs = _variants(actor), _jobs()
    plain = make("hopper")
    plain.max_episode_steps = 100
    expected = _reference(plain, actor.policy(task.action_low, task.action_high), variants, jobs)
    said = []
    rollouts = Rollouts(task, policy, workers=3, log=said.append)
    try:
        def run():
            returns, steps = rollouts.run(variants, jobs)
            return [(float(r), int(n)) for r, n in zip(returns, steps)]
        assert run() == expected and rollouts.deaths == 0
        # killed between two calls (as the kernel's OOM killer would): the next call notices
        victim = rollouts.pids()[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: _dead(victim), "the killed worker to exit")
        assert run() == expected
        assert rollouts.deaths == 1 and rollouts.live_workers == 2
        assert said == [f"rollout worker 1 (pid {victim}) died (killed by signal 9); its episodes run on the "
                        f"2 process(es) left (the results do not change)"]
        # dying in the middle of an episode: its job runs again elsewhere
        task.deadly_flag.touch()
        assert run() == expected
        assert rollouts.deaths == 2 and rollouts.live_workers == 1 and rollouts.pids() == []
        assert "rollout worker 2" in said[1] and "died (killed by signal 9)" in said[1]
    finally:
        rollouts.close()


class _FailsInWorkers(Hopper):
    agent_pid = None

    def reset(self, seed=None):
        if os.getpid() != self.agent_pid:
            raise FloatingPointError("the simulation blew up")
        return super().reset(seed)


def test_an_episode_that_fails_in_a_worker_raises_with_its_message():
    task = _FailsInWorkers()
    task.max_episode_steps = 50
    task.agent_pid = os.getpid()
    actor, policy = _hopper_policy(task)
    rollouts = Rollouts(task, policy, workers=2, **QUIET)
    try:
        with pytest.raises(RolloutError, match=r"rollout worker 1: episode with reset seed \d+ failed: "
                                               r"FloatingPointError: the simulation blew up"):
            rollouts.run(_variants(actor), _jobs(40))
        assert rollouts.deaths == 0
    finally:
        rollouts.close()


def test_closing_the_pool_ends_its_processes():
    task = make("hopper")
    _, policy = _hopper_policy(task)
    rollouts = Rollouts(task, policy, workers=3, **QUIET)
    pids = rollouts.pids()
    assert len(pids) == 2
    rollouts.close()
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)          # reaped: no longer this process's child


@pytest.mark.parametrize("bad", [0, -2, 1.5, "two"])
def test_a_bad_worker_count_is_refused_clearly(bad):
    with pytest.raises(ValueError, match="--workers must be a positive whole number"):
        check_workers(bad)


def test_fedzo_agent_refuses_a_bad_worker_count(tmp_path):
    key = tmp_path / "run.key"
    key.write_text("ab" * 32)
    key.chmod(0o600)
    done = subprocess.run([sys.executable, "-m", "fedzo.cli", "agent", "--connect", "127.0.0.1:9",
                           "--key-file", str(key), "--workers", "0"],
                          capture_output=True, text=True, timeout=PATIENCE)
    assert done.returncode == 2
    assert "--workers must be a positive whole number, got 0" in done.stderr


class _ShowsEpisodes(CoinFlip):
    """A source that, like a person's page, asks for each episode's clip."""

    def clip_recorder(self, task):
        from fedzo.edge.human.clips import ClipRecorder
        return ClipRecorder(task)


def test_a_run_a_person_answers_rolls_out_in_the_agents_process():
    config = RunConfig(task="hopper", agents=2, batch=1, horizon=40, seed=5)
    actor = load_actor(config)
    agent = ParS2ZPOAgent(config, 0, initial_store(config, actor), make(config.task), actor,
                          _ShowsEpisodes(), workers=3, **QUIET)
    try:
        assert agent.rollouts.workers == 1 and agent.rollouts.pids() == []
        agent.vote(0)
        assert agent.episodes == 2
    finally:
        agent.close()


def test_fedzo_simulate_refuses_a_bad_worker_count(tmp_path, capsys):
    from fedzo.cli import main
    assert main(["simulate", "--workers", "0", "--rounds", "1", "--out", str(tmp_path / "run")]) == 2
    assert "--workers must be a positive whole number, got 0" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
