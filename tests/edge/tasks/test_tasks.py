"""fedzo.edge.tasks on its own: the API, shapes, reset determinism, the reward,
termination and time-limit rules. (Agreement with Gymnasium itself is checked
in test_tasks_vs_gymnasium.py.)"""

import subprocess
import sys

import mujoco
import numpy as np
import pytest

from fedzo.edge.tasks import TASK_NAMES, make
from fedzo.edge.tasks._model import model_path

# name: (nq, nv, obs_dim, act_dim, frame_skip, dt, qpos entries left out of obs,
#        velocity clip or None, reset noise scale, can terminate)
FACTS = {
    "hopper": (6, 6, 11, 3, 4, 0.008, 1, 10.0, 5e-3, True),
    "halfcheetah": (9, 9, 17, 6, 5, 0.05, 1, None, 0.1, False),
    "walker2d": (9, 9, 17, 6, 4, 0.008, 1, 10.0, 5e-3, True),
    "swimmer": (5, 5, 8, 2, 4, 0.04, 2, None, 0.1, False),
}
CTRL_COST = {"hopper": 1e-3, "halfcheetah": 0.1, "walker2d": 1e-3, "swimmer": 1e-4}


@pytest.fixture(params=TASK_NAMES)
def task(request):
    return make(request.param)


def random_actions(task, n, seed=0, scale=1.0):
    return scale * np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, task.act_dim))


def expected_obs(task):
    """The observation built the slow, obvious way from the task's MjData."""
    skip, clip = FACTS[task.name][6], FACTS[task.name][7]
    vel = task.data.qvel.copy()
    if clip is not None:
        vel = np.clip(vel, -clip, clip)
    return np.concatenate([task.data.qpos[skip:], vel])


def set_qpos_qvel(task, qpos_changes=(), qvel_changes=()):
    """Change some entries of the current state through set_state."""
    qpos, qvel = task.data.qpos.copy(), task.data.qvel.copy()
    for i, v in qpos_changes:
        qpos[i] = v
    for i, v in qvel_changes:
        qvel[i] = v
    task.set_state(qpos, qvel)


# --- names and construction ---------------------------------------------------


def test_every_task_name_makes_its_task_and_every_task_is_checked_here():
    """Each name builds the task of that name, one model file each, and this file's
    facts cover exactly the listed tasks, so a new task cannot skip these checks."""
    assert set(FACTS) == set(CTRL_COST) == set(TASK_NAMES)
    assert {p.stem for p in model_path(TASK_NAMES[0]).parent.glob("*.xml")} == set(TASK_NAMES)
    assert [make(name).name for name in TASK_NAMES] == list(TASK_NAMES)


@pytest.mark.parametrize("bad", ["ant", "Hopper", "Hopper-v5", "", "hopper "])
def test_unknown_name_lists_valid_names(bad):
    with pytest.raises(ValueError) as info:
        make(bad)
    for name in TASK_NAMES:
        assert name in str(info.value)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_model_file_is_package_data(name):
    assert model_path(name).is_file()


def test_make_returns_fresh_tasks():
    a, b = make("swimmer"), make("swimmer")
    assert a is not b and a.data is not b.data


def test_api(task):
    nq, nv, obs_dim, act_dim, frame_skip, dt = FACTS[task.name][:6]
    assert isinstance(task.model, mujoco.MjModel)
    assert isinstance(task.data, mujoco.MjData)
    assert (task.model.nq, task.model.nv, task.model.nu) == (nq, nv, act_dim)
    assert (task.obs_dim, task.act_dim) == (obs_dim, act_dim)
    assert task.frame_skip == frame_skip
    assert task.dt == pytest.approx(dt, rel=1e-12)
    assert task.max_episode_steps == 1000
    np.testing.assert_array_equal(task.action_low, -np.ones(act_dim))
    np.testing.assert_array_equal(task.action_high, np.ones(act_dim))
    # a new task rests in the model's reference pose
    np.testing.assert_array_equal(task.data.qpos, task.model.qpos0)
    assert task.name in repr(task)


def test_halfcheetah_total_mass_is_applied():
    # the loader scales the geoms' masses (21.18 kg at density 1000) to 14 kg
    assert make("halfcheetah").model.body_mass.sum() == pytest.approx(14.0, rel=1e-12)


def test_no_gymnasium_at_run_time():
    code = (
        "import sys, numpy as np\n"
        "from fedzo.edge.tasks import TASK_NAMES, make\n"
        "for n in TASK_NAMES:\n"
        "    t = make(n); t.reset(0); t.step(np.zeros(t.act_dim))\n"
        "assert 'gymnasium' not in sys.modules, 'gymnasium was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- reset ----------------------------------------------------------------------


def test_reset_observation_layout(task):
    obs = task.reset(seed=0)
    assert obs.dtype == np.float64
    assert obs.shape == (task.obs_dim,)
    np.testing.assert_array_equal(obs, expected_obs(task))
    assert task.elapsed_steps == 0


def test_reset_same_seed_same_state(task):
    other = make(task.name)
    first = task.reset(seed=123).copy()
    qpos = task.data.qpos.copy()
    for a in random_actions(task, 5):
        task.step(a)
    np.testing.assert_array_equal(task.reset(seed=123), first)
    np.testing.assert_array_equal(task.data.qpos, qpos)
    np.testing.assert_array_equal(other.reset(seed=123), first)
    assert not np.array_equal(task.reset(seed=124), first)


def test_reset_without_seed_continues_the_stream(task):
    other = make(task.name)
    seeded = task.reset(seed=5).copy()
    follow = task.reset().copy()
    assert not np.array_equal(seeded, follow)
    other.reset(seed=5)
    np.testing.assert_array_equal(other.reset(), follow)
    # the very first reset may be unseeded
    assert make(task.name).reset().shape == (task.obs_dim,)


def test_reset_noise_draws(task):
    """The documented draws: all of qpos first, then all of qvel, from default_rng(seed)."""
    scale = FACTS[task.name][8]
    nq, nv = task.model.nq, task.model.nv
    for seed in (0, 7, 2**40):
        task.reset(seed=seed)
        rng = np.random.default_rng(seed)
        qpos = task.model.qpos0 + rng.uniform(-scale, scale, size=nq)
        if task.name == "halfcheetah":
            qvel = scale * rng.standard_normal(nv)
        else:
            qvel = rng.uniform(-scale, scale, size=nv)
        np.testing.assert_array_equal(task.data.qpos, qpos)
        np.testing.assert_array_equal(task.data.qvel, qvel)


def test_reset_clears_episode_state(task):
    task.reset(seed=1)
    for a in random_actions(task, 10):
        task.step(a)
    task.reset(seed=1)
    assert task.elapsed_steps == 0
    assert task.data.time == 0.0
    np.testing.assert_array_equal(task.data.ctrl, 0.0)


def test_hopper_and_walker_start_upright():
    for name in ("hopper", "walker2d"):
        t = make(name)
        t.reset(seed=0)
        assert abs(t.data.qpos[1] - 1.25) <= 5e-3
        assert abs(t.data.qpos[2]) <= 5e-3


# --- step ------------------------------------------------------------------------


def test_step_types_and_layout(task):
    task.reset(seed=0)
    obs, reward, terminated, truncated = task.step(random_actions(task, 1)[0])
    assert obs.dtype == np.float64 and obs.shape == (task.obs_dim,)
    assert type(reward) is float
    assert type(terminated) is bool and type(truncated) is bool
    np.testing.assert_array_equal(obs, expected_obs(task))
    assert task.elapsed_steps == 1


def test_step_accepts_lists_and_float32(task):
    task.reset(seed=0)
    task.step([0.1] * task.act_dim)
    task.step(np.full(task.act_dim, 0.1, dtype=np.float32))
    assert task.elapsed_steps == 2


def test_step_rejects_wrong_action_shape(task):
    task.reset(seed=0)
    for bad in (np.zeros(task.act_dim + 1), np.zeros((1, task.act_dim)), 0.0):
        with pytest.raises(ValueError):
            task.step(bad)


def test_one_obs_buffer_is_reused_so_a_kept_observation_needs_a_copy(task):
    obs0 = task.reset(seed=0)
    kept = obs0.copy()
    obs1, *_ = task.step(np.zeros(task.act_dim))
    assert obs1 is obs0 and task.observe() is obs0
    assert not np.array_equal(kept, obs1)  # the buffer was overwritten
    assert task.reset(seed=0) is obs0      # reset writes into it too
    np.testing.assert_array_equal(obs0, kept)


def test_steps_are_deterministic(task):
    other = make(task.name)
    task.reset(seed=9)
    other.reset(seed=9)
    for a in random_actions(task, 50, seed=3):
        o1, r1, te1, tr1 = task.step(a)
        o2, r2, te2, tr2 = other.step(a)
        np.testing.assert_array_equal(o1, o2)
        assert (r1, te1, tr1) == (r2, te2, tr2)


def test_reward_is_forward_velocity_minus_control_cost(task):
    """reward = dx/dt - w * sum(a^2) (+ 1 while healthy for hopper and walker2d)."""
    task.reset(seed=2)
    for a in random_actions(task, 20, seed=4, scale=1.3):  # includes out-of-range actions
        x0 = task.data.qpos[0]
        _, reward, terminated, _ = task.step(a)
        x1 = task.data.qpos[0]
        expected = (x1 - x0) / task.dt - CTRL_COST[task.name] * np.sum(np.square(a))
        if FACTS[task.name][9] and not terminated:
            expected += 1.0
        assert reward == pytest.approx(expected, rel=1e-12, abs=1e-12)
        if terminated:
            break


def test_actions_are_clamped_by_the_model(task):
    task.reset(seed=0)
    task.step(np.full(task.act_dim, 5.0))
    # the control is stored as given and clamped to ctrlrange by MuJoCo: a
    # motor's (pre-gear) force is then the clamped control, 1
    assert task.model.actuator_ctrllimited.all()
    np.testing.assert_array_equal(task.data.ctrl, 5.0)
    np.testing.assert_array_equal(task.data.actuator_force, 1.0)


def test_velocity_clipping_in_observation(task):
    task.reset(seed=0)
    set_qpos_qvel(task, qvel_changes=[(task.model.nv - 1, 50.0), (task.model.nv - 2, -50.0)])
    obs = task.observe()
    clip = FACTS[task.name][7]
    expected = (clip, -clip) if clip is not None else (50.0, -50.0)
    assert (obs[-1], obs[-2]) == expected


def test_set_state_validates_shapes(task):
    nq, nv = task.model.nq, task.model.nv
    with pytest.raises(ValueError):
        task.set_state(np.zeros(nq + 1), np.zeros(nv))
    with pytest.raises(ValueError):
        task.set_state(np.zeros(nq), np.zeros(nv - 1))


def test_set_state_keeps_step_count(task):
    task.reset(seed=0)
    task.step(np.zeros(task.act_dim))
    task.set_state(task.model.qpos0, np.zeros(task.model.nv))
    assert task.elapsed_steps == 1
    np.testing.assert_array_equal(task.observe(), expected_obs(task))


# --- termination ---------------------------------------------------------------------


def test_hopper_falls_over_without_control():
    hopper = make("hopper")
    hopper.reset(seed=0)
    for step in range(1, 1001):
        _, reward, terminated, _ = hopper.step(np.zeros(3))
        if terminated:
            break
    assert terminated and step < 1000
    # it fell by tilting: the torso angle left (-0.2, 0.2)
    assert abs(hopper.data.qpos[2]) >= 0.2
    # and the step that ended it paid no survival bonus
    assert reward < 1.0 - 0.5


@pytest.mark.parametrize(
    "qpos_changes, why",
    [
        ([(1, 0.6)], "z below 0.7"),
        ([(2, 0.35)], "torso angle beyond 0.2"),
        ([(2, -0.35)], "torso angle below -0.2"),
    ],
)
def test_hopper_unhealthy_states_terminate(qpos_changes, why):
    hopper = make("hopper")
    hopper.reset(seed=0)
    set_qpos_qvel(hopper, qpos_changes)
    x0 = hopper.data.qpos[0]
    _, reward, terminated, truncated = hopper.step(np.zeros(3))
    assert terminated, why
    assert not truncated
    # no survival bonus (and no control cost for a zero action)
    assert reward == pytest.approx((hopper.data.qpos[0] - x0) / hopper.dt, rel=1e-12, abs=1e-12)


def test_hopper_velocity_rule_alone_terminates():
    # a fast horizontal throw keeps z and angle healthy: only |qvel| >= 100 trips
    hopper = make("hopper")
    hopper.reset(seed=0)
    set_qpos_qvel(hopper, qvel_changes=[(0, 150.0)])
    x0 = hopper.data.qpos[0]
    _, reward, terminated, _ = hopper.step(np.zeros(3))
    assert hopper.data.qpos[1] > 0.7 and abs(hopper.data.qpos[2]) < 0.2
    assert np.abs(hopper.data.qvel).max() >= 100.0
    assert terminated
    assert reward == pytest.approx((hopper.data.qpos[0] - x0) / hopper.dt, rel=1e-12)


def test_hopper_healthy_step_pays_bonus():
    hopper = make("hopper")
    hopper.reset(seed=0)
    x0 = hopper.data.qpos[0]
    _, reward, terminated, _ = hopper.step(np.zeros(3))
    assert not terminated
    assert reward == pytest.approx((hopper.data.qpos[0] - x0) / hopper.dt + 1.0, rel=1e-12)


@pytest.mark.parametrize(
    "qpos_changes, why",
    [
        ([(1, 0.6)], "z below 0.8"),
        ([(1, 2.5)], "z above 2.0"),
        ([(2, 1.2)], "torso angle beyond 1"),
        ([(2, -1.2)], "torso angle below -1"),
    ],
)
def test_walker_unhealthy_states_terminate(qpos_changes, why):
    walker = make("walker2d")
    walker.reset(seed=0)
    set_qpos_qvel(walker, qpos_changes)
    _, _, terminated, _ = walker.step(np.zeros(6))
    assert terminated, why


def test_walker_falls_over_without_control():
    walker = make("walker2d")
    walker.reset(seed=0)
    for _ in range(1000):
        *_, terminated, _ = walker.step(np.zeros(6))
        if terminated:
            break
    assert terminated


@pytest.mark.parametrize("name", ["halfcheetah", "swimmer"])
def test_runners_never_terminate(name):
    t = make(name)
    t.reset(seed=0)
    # upside down, far away, spinning: still not terminated
    set_qpos_qvel(t, [(0, 50.0), (2, np.pi)], [(2, 20.0)])
    for a in random_actions(t, 20):
        _, _, terminated, _ = t.step(a)
        assert terminated is False


# --- time limit ----------------------------------------------------------------------


def test_truncated_exactly_at_step_1000(task):
    task.reset(seed=0)
    actions = random_actions(task, 1000, seed=1)
    for i, a in enumerate(actions, start=1):
        *_, truncated = task.step(a)
        assert truncated == (i >= 1000), i
    assert task.elapsed_steps == 1000
    # a new episode starts its own count
    task.reset(seed=0)
    *_, truncated = task.step(actions[0])
    assert not truncated and task.elapsed_steps == 1
