"""fedzo.edge.tasks against Gymnasium's v5 environments, step by step.

Our tasks must reproduce Hopper-v5, HalfCheetah-v5, Walker2d-v5 and Swimmer-v5
(default arguments): same compiled physics, same reset draws, and the same
observations, rewards, terminations and truncations under the same actions.
"""

import contextlib
import os

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

from fedzo.edge.tasks import TASK_NAMES, make  # noqa: E402

GYM_IDS = {
    "hopper": "Hopper-v5",
    "halfcheetah": "HalfCheetah-v5",
    "walker2d": "Walker2d-v5",
    "swimmer": "Swimmer-v5",
}
CAN_FALL = ("hopper", "walker2d")
RTOL, ATOL = 1e-6, 1e-9

# (reset seed, action seed, action scale): full-range random actions, actions
# beyond the [-1, 1] ctrlrange (clamped by MuJoCo, costed unclipped), and
# gentle ones with which hopper and walker2d stay up longer
CASES = [(0, 100, 1.0), (1, 101, 1.0), (2, 102, 1.5), (3, 103, 0.2)]
N_STEPS = 300


@contextlib.contextmanager
def _cwd(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def gym_make(tmp_path_factory):
    """gymnasium.make for a task name, compiling the XML inside a temp dir.

    Gymnasium's half_cheetah.xml uses the deprecated settotalmass, and MuJoCo
    appends that warning to MUJOCO_LOG.TXT in the working directory; this
    keeps the file out of the checkout.
    """
    log_dir = tmp_path_factory.mktemp("mujoco_log")

    def _make(name):
        with _cwd(log_dir):
            return gymnasium.make(GYM_IDS[name])

    return _make


def assert_close(ours, theirs, what):
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=what)


def run_side_by_side(task, env, actions, label):
    """Step both with the same actions; check every step; return the flags."""
    flags = []
    for i, a in enumerate(actions):
        obs, reward, terminated, truncated = task.step(a)
        g_obs, g_reward, g_terminated, g_truncated, _ = env.step(a)
        where = f"{label}, step {i + 1}"
        assert_close(obs, g_obs, f"observation, {where}")
        assert_close(reward, g_reward, f"reward, {where}")
        assert (terminated, truncated) == (bool(g_terminated), bool(g_truncated)), where
        flags.append((terminated, truncated))
    assert_close(task.data.qpos, env.unwrapped.data.qpos, f"final qpos, {label}")
    assert_close(task.data.qvel, env.unwrapped.data.qvel, f"final qvel, {label}")
    return flags


# --- the compiled models -------------------------------------------------------------

MODEL_ARRAYS = [
    "body_mass", "body_inertia", "body_ipos", "body_iquat", "body_pos", "body_quat",
    "jnt_type", "jnt_limited", "jnt_range", "jnt_axis", "jnt_pos", "jnt_stiffness",
    "qpos0", "qpos_spring", "dof_damping", "dof_armature", "dof_frictionloss",
    "actuator_gear", "actuator_ctrlrange", "actuator_ctrllimited", "actuator_trnid",
]
BODY_GEOM_ARRAYS = [
    "geom_type", "geom_size", "geom_pos", "geom_quat", "geom_friction", "geom_contype",
    "geom_conaffinity", "geom_condim", "geom_margin", "geom_solref", "geom_solimp",
]


@pytest.mark.parametrize("name", TASK_NAMES)
def test_model_facts_match(name, gym_make):
    task, env = make(name), gym_make(name)
    ours, theirs = task.model, env.unwrapped.model
    assert (ours.nq, ours.nv, ours.nu, ours.na, ours.nbody, ours.njnt) == (
        theirs.nq, theirs.nv, theirs.nu, theirs.na, theirs.nbody, theirs.njnt
    )
    assert ours.opt.timestep == theirs.opt.timestep
    assert ours.opt.integrator == theirs.opt.integrator
    for field in ("gravity", "density", "viscosity", "wind", "magnetic"):
        np.testing.assert_array_equal(getattr(ours.opt, field), getattr(theirs.opt, field), field)
    for field in MODEL_ARRAYS:
        np.testing.assert_allclose(getattr(ours, field), getattr(theirs, field),
                                   rtol=1e-12, atol=0, err_msg=field)
    # geoms attached to moving bodies (our swimmer has no ground plane: it
    # collides with nothing and served only the viewer)
    ours_g, theirs_g = ours.geom_bodyid > 0, theirs.geom_bodyid > 0
    for field in BODY_GEOM_ARRAYS:
        np.testing.assert_allclose(getattr(ours, field)[ours_g], getattr(theirs, field)[theirs_g],
                                   rtol=1e-12, atol=0, err_msg=field)
    if name != "swimmer":
        for field in BODY_GEOM_ARRAYS:
            np.testing.assert_allclose(getattr(ours, field)[~ours_g],
                                       getattr(theirs, field)[~theirs_g],
                                       rtol=1e-12, atol=0, err_msg="floor " + field)

    u = env.unwrapped
    assert task.frame_skip == u.frame_skip
    assert task.dt == u.dt
    assert task.max_episode_steps == env.spec.max_episode_steps == 1000
    assert (task.obs_dim,) == env.observation_space.shape
    assert (task.act_dim,) == env.action_space.shape
    np.testing.assert_array_equal(task.action_low, env.action_space.low)
    np.testing.assert_array_equal(task.action_high, env.action_space.high)
    np.testing.assert_array_equal(task.init_qpos, u.init_qpos)
    np.testing.assert_array_equal(task.init_qvel, u.init_qvel)


# --- reset -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", TASK_NAMES)
def test_reset_matches(name, gym_make):
    task, env = make(name), gym_make(name)
    for seed in (0, 1, 42, 12345, 2**32 + 7):
        obs = task.reset(seed=seed)
        g_obs, _ = env.reset(seed=seed)
        assert_close(obs, g_obs, f"reset obs, seed {seed}")
        assert_close(task.data.qpos, env.unwrapped.data.qpos, f"reset qpos, seed {seed}")
        assert_close(task.data.qvel, env.unwrapped.data.qvel, f"reset qvel, seed {seed}")
    # an unseeded reset continues the generator as Gymnasium's does
    for _ in range(2):
        assert_close(task.reset(), env.reset()[0], "unseeded reset")


# --- trajectories ------------------------------------------------------------------


@pytest.mark.parametrize("name", TASK_NAMES)
def test_trajectories_match(name, gym_make):
    task, env = make(name), gym_make(name)
    terminated_somewhere = False
    for reset_seed, action_seed, scale in CASES:
        rng = np.random.default_rng(action_seed)
        actions = scale * rng.uniform(-1.0, 1.0, size=(N_STEPS, task.act_dim))
        assert_close(task.reset(seed=reset_seed), env.reset(seed=reset_seed)[0], "reset")
        # both are stepped on past a termination, so the comparison covers the
        # terminating step and the physics of the fallen body as well
        flags = run_side_by_side(task, env, actions, f"{name} seed {reset_seed}")
        terminated_somewhere |= any(t for t, _ in flags)
    assert terminated_somewhere == (name in CAN_FALL)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_set_state_matches(name, gym_make):
    """From a mid-episode state put in place by set_state on both sides."""
    task, env = make(name), gym_make(name)
    rng = np.random.default_rng(7)
    env.reset(seed=11)
    for a in rng.uniform(-1.0, 1.0, size=(40, task.act_dim)):
        env.step(a)
    qpos = env.unwrapped.data.qpos.copy()
    qvel = env.unwrapped.data.qvel.copy()

    # both start the new episode identically (fresh solver warm start), then
    # jump to the recorded state
    task.reset(seed=3)
    env.reset(seed=3)
    task.set_state(qpos, qvel)
    env.unwrapped.set_state(qpos, qvel)
    assert_close(task.observe(), env.unwrapped._get_obs(), "observation after set_state")
    actions = rng.uniform(-1.0, 1.0, size=(200, task.act_dim))
    run_side_by_side(task, env, actions, f"{name} from set_state")


@pytest.mark.parametrize("name", TASK_NAMES)
def test_time_limit_matches(name, gym_make):
    task, env = make(name), gym_make(name)
    actions = np.random.default_rng(5).uniform(-1.0, 1.0, size=(1000, task.act_dim))
    task.reset(seed=5)
    env.reset(seed=5)
    flags = run_side_by_side(task, env, actions, f"{name} full episode")
    truncated = [tr for _, tr in flags]
    assert truncated == [False] * 999 + [True]
