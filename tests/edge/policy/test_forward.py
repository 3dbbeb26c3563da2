"""The policy forward (fedzo.edge.policy.forward, csrc/fedzo_forward.c; issue 15 item 2): the
kernel's C forward and its NumPy twin give the same bits, and fedzo's tanh is tanh."""
import numpy as np
import pytest

from fedzo.edge.learning.algorithm import ACTOR_DIR
from fedzo.edge.policy import forward
from fedzo.edge.policy.mlp import Actor, MLPPolicy
from fedzo.edge.tasks import TASK_NAMES, make

needs_c = pytest.mark.skipif(forward.c_module() is None, reason="the C kernel is not built here")


def _twins(obs_dim, act_dim, hidden, rng, low=-1.0, high=1.0, scale=0.3):
    """Two policies with the same random parameters, one per implementation."""
    made = []
    mean, std = rng.normal(size=obs_dim), rng.uniform(0.2, 3.0, obs_dim)
    for impl in ("c", "numpy"):
        policy = MLPPolicy(obs_dim, act_dim, hidden, mean, std, low, high, forward_impl=impl)
        made.append(policy)
    theta = (scale * rng.standard_normal(made[0].d)).astype(np.float32)
    for policy in made:
        policy.load(theta)
    return made


@needs_c
@pytest.mark.parametrize("name", TASK_NAMES)
def test_c_and_numpy_forwards_agree_bit_for_bit_along_episodes(name):
    task = make(name)
    actor = Actor.load(ACTOR_DIR / f"{name}.npz")
    c, twin = actor.policy(task.action_low, task.action_high), actor.policy(task.action_low, task.action_high)
    c.bind_forward("c")
    twin.bind_forward("numpy")
    assert isinstance(c.forward, forward.CForward) and isinstance(twin.forward, forward.NumpyForward)
    obs = task.reset(11)
    for step in range(300):
        action = c.act(obs)
        np.testing.assert_array_equal(action, twin.act(obs))
        obs, _, terminated, truncated = task.step(action)
        if terminated or truncated:
            obs = task.reset(12 + step)


@needs_c
@pytest.mark.parametrize("hidden", [(64, 64), (5,), (17, 9, 33), (1, 8, 16)])
def test_c_and_numpy_forwards_agree_on_any_shape_scaling_and_odd_inputs(hidden):
    rng = np.random.default_rng(len(hidden) * 100 + hidden[0])
    # widths that are not multiples of 8 (partial lane blocks), a control range that is not
    # [-1, 1] (the half and mid steps), saturating weights, and observations beyond the clip
    c, twin = _twins(13, 4, hidden, rng, low=[-2.0, 0.0, -1.0, -0.4], high=[2.0, 3.0, 1.0, 0.0], scale=1.5)
    for obs in list(rng.normal(0, 5, (200, 13))) + [np.zeros(13), np.full(13, 1e30), np.full(13, -np.inf)]:
        np.testing.assert_array_equal(c.act(obs), twin.act(obs))
    # NaN goes through (a blown-up state stays visible)
    bad = np.zeros(13)
    bad[3] = np.nan
    assert np.isnan(c.act(bad)).all() and np.isnan(twin.act(bad)).all()
    # a float32 observation and a fresh array each call give the same action as the buffer
    obs = rng.normal(size=13)
    np.testing.assert_array_equal(c.act(obs.astype(np.float32)), twin.act(obs.astype(np.float32)))
    with pytest.raises(ValueError, match=r"expected an observation of shape \(13,\)"):
        c.act(np.zeros(12))


def test_fedzos_tanh_is_tanh_within_1e_11_and_odd():
    x = np.concatenate([np.linspace(-25, 25, 200001), np.geomspace(1e-12, 1e-1, 2000),
                        -np.geomspace(1e-12, 1e-1, 2000), [0.0, 20.0, 1e300, -np.inf, np.inf]])
    t = forward.tanh64(x)
    assert np.abs(t - np.tanh(x)).max() < 1e-11
    assert np.array_equal(forward.tanh64(-x[x != 0]), -t[x != 0])
    assert np.isnan(forward.tanh64([np.nan])).all()
    # rounded to float32, the actions' precision, it is np.tanh's float32 to one unit in the last place
    x32 = np.linspace(-12, 12, 100001).astype(np.float32)
    ours = forward.tanh64(x32.astype(np.float64)).astype(np.float32)
    exact = np.tanh(x32.astype(np.float64)).astype(np.float32)
    assert (ours.view(np.int32) - exact.view(np.int32)).__abs__().max() <= 1


@needs_c
def test_the_c_tanh_is_the_numpy_twin_bit_for_bit():
    lib = forward.c_module().lib
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0, 4, 20000), rng.uniform(-30, 30, 5000), [0.0, -0.0, 20.0, -20.0, 1e-300]])
    ours = forward.tanh64(x)
    assert np.array_equal(np.array([lib.fz_tanh(float(v)) for v in x]), ours)


def test_numpy_is_the_default_without_the_kernel_and_c_can_be_refused(monkeypatch):
    monkeypatch.setattr(forward, "c_module", lambda: None)
    policy = MLPPolicy(11, 3)
    assert isinstance(policy.forward, forward.NumpyForward)
    with pytest.raises(ValueError, match="the C forward is not available here"):
        policy.bind_forward("c")
    with pytest.raises(ValueError, match="must be 'c' or 'numpy'"):
        policy.bind_forward("fortran")


def _plain_episode(task, policy, seed):
    """reset, then act and step until the episode ends: (return, steps)."""
    obs, total, steps = task.reset(seed), 0.0, 0
    while True:
        obs, reward, terminated, truncated = task.step(policy.act(obs))
        total += reward
        steps += 1
        if terminated or truncated:
            return total, steps


@needs_c
@pytest.mark.parametrize("name", TASK_NAMES)
def test_the_fused_loop_runs_the_plain_loops_episode_bit_for_bit(name):
    from fedzo.edge.policy.rollout import fused_step, run_episode
    task = make(name)
    actor = Actor.load(ACTOR_DIR / f"{name}.npz")
    policy = actor.policy(task.action_low, task.action_high)
    assert fused_step(task, policy) is not None
    rng = np.random.default_rng(4)
    noisy = (actor.theta + 0.05 * rng.standard_normal(actor.theta.size)).astype(np.float32)
    for theta, limit in ((actor.theta, 300), (noisy, 1000)):     # truncated, and (hopper, walker) falling
        policy.load(theta)
        task.max_episode_steps = limit
        for seed in (1, 2):
            fused = run_episode(task, policy, seed)
            after = (task.data.qpos.copy(), task.observe().copy(), task.elapsed_steps, policy.act.__self__)
            assert fused == _plain_episode(task, policy, seed)
            np.testing.assert_array_equal(after[0], task.data.qpos)
            assert after[2] == task.elapsed_steps


def test_no_fused_loop_for_the_numpy_twin_or_a_task_with_its_own_step():
    from fedzo.edge.policy.rollout import fused_step
    from fedzo.edge.tasks.hopper import Hopper

    class OwnStep(Hopper):
        def step(self, action):
            return super().step(action)

    task = make("hopper")
    actor = Actor.load(ACTOR_DIR / "hopper.npz")
    twin = actor.policy(task.action_low, task.action_high)
    twin.bind_forward("numpy")
    assert fused_step(task, twin) is None
    if forward.c_module() is not None:
        assert fused_step(OwnStep(), actor.policy()) is None
        assert fused_step(task, MLPPolicy(5, 3)) is None              # other sizes


RUN = """
import sys, tempfile
from pathlib import Path
sys.path.insert(0, {tests!r})
from small_runs import run_small
from fedzo.edge.policy import forward
_, _, summary = run_small(Path(tempfile.mkdtemp()), horizon=120, batch=2)
report["forward"] = "c" if forward.c_module() else "numpy"
report["theta_hash"] = summary["theta_hash"]
report["return_final"] = summary["return_final"]
"""


@needs_c
def test_a_run_on_the_numpy_fallback_ends_on_the_c_runs_theta():
    # agents without the kernel vote as agents with it: same returns, same votes, same theta
    from pathlib import Path

    from isolated import in_fresh_interpreter
    code = RUN.format(tests=str(Path(__file__).resolve().parents[2]))
    runs = [in_fresh_interpreter(code, timeout=300, env={"FEDZO_KERNEL": backend}) for backend in ("c", "numpy")]
    assert [r["forward"] for r in runs] == ["c", "numpy"]
    assert runs[0]["theta_hash"] == runs[1]["theta_hash"] and runs[0]["return_final"] == runs[1]["return_final"]
