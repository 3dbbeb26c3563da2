"""Parameter layout and partition, the fixed-point store, and the policy's forward pass."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedzo.edge.learning.fixedpoint import FixedPoint, ParameterStore
from fedzo.edge.learning.layout import (
    block_bounds,
    mlp_layers,
    mlp_param_count,
    partition,
)
from fedzo.edge.policy.mlp import OBS_CLIP, Actor, MLPPolicy


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_partition_covers_every_parameter_exactly_once(data):
    d = data.draw(st.integers(1, 10**7))
    agents = data.draw(st.integers(1, min(d, 2000)))
    blocks = partition(d, agents)
    assert blocks[0][0] == 0 and blocks[-1][1] == d
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))   # contiguous, no overlap
    sizes = [stop - start for start, stop in blocks]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


def test_partition_small_cases_exhaustively():
    for d in range(1, 40):
        for agents in range(1, d + 1):
            covered = np.zeros(d, int)
            for start, stop in partition(d, agents):
                covered[start:stop] += 1
            assert (covered == 1).all()


def test_partition_rejects_impossible_splits():
    with pytest.raises(ValueError, match="agents"):
        partition(3, 4)
    with pytest.raises(ValueError, match="block index"):
        block_bounds(10, 2, 2)


def test_hopper_policy_has_5123_parameters_in_documented_order():
    assert mlp_param_count(11, 3) == 5123
    layers = mlp_layers(11, 3)
    assert [(l.weight_start, l.bias_start, l.stop) for l in layers] == [
        (0, 704, 768), (768, 4864, 4928), (4928, 5120, 5123)]


def test_forward_pass_matches_the_written_out_formula():
    rng = np.random.default_rng(3)
    obs_dim, act_dim = 7, 2
    mean, std = rng.normal(size=obs_dim), rng.uniform(0.5, 2, obs_dim)
    policy = MLPPolicy(obs_dim, act_dim, (5, 4), mean, std, act_low=[-1, -2], act_high=[1, 4])
    theta = rng.normal(0, 0.5, policy.d).astype(np.float32)
    policy.load(theta)
    obs = rng.normal(0, 30, obs_dim)            # large enough to hit the clip
    # Unpack theta by hand: per layer, weights (out, in) row-major, then biases.
    w1 = theta[:35].reshape(5, 7); b1 = theta[35:40]
    w2 = theta[40:60].reshape(4, 5); b2 = theta[60:64]
    w3 = theta[64:72].reshape(2, 4); b3 = theta[72:74]
    x = np.clip((obs - mean) / std, -OBS_CLIP, OBS_CLIP)
    a = np.tanh(w3 @ np.tanh(w2 @ np.tanh(w1 @ x + b1) + b2) + b3)
    expected = np.array([0, 1]) + a * np.array([1, 3])
    np.testing.assert_allclose(policy.act(obs), expected, rtol=1e-5, atol=1e-6)


def test_policy_refresh_reads_the_store():
    rng = np.random.default_rng(4)
    policy = MLPPolicy(11, 3)
    store = ParameterStore.from_float(rng.normal(0, 0.3, policy.d))
    policy.refresh(store)
    np.testing.assert_array_equal(policy.theta, store.to_float())
    start, stop = 100, 900
    store.update(start, stop, seed=1, stream=0, round_=0, steps=50)
    policy.refresh(store, start, stop)
    np.testing.assert_array_equal(policy.theta, store.to_float())


def test_fixed_point_steps_and_scale_choice():
    fmt = FixedPoint(np.int16, 12)
    assert fmt.steps(1e-9) == 1                 # never zero
    assert fmt.steps(0.01) == round(0.01 * 4096)
    with pytest.raises(ValueError, match="positive"):
        fmt.steps(0.0)
    with pytest.raises(ValueError, match="frac_bits"):
        FixedPoint(np.int16, 16)
    chosen = FixedPoint.for_values(np.array([-3.0, 1.0]))
    assert chosen.max_value >= 6.0 and chosen.max_value < 12.0   # 2x headroom, finest that fits


def test_store_perturb_restore_update_touch_only_their_block():
    rng = np.random.default_rng(5)
    store = ParameterStore.from_float(rng.normal(0, 1, 1000), FixedPoint(np.int16, 12))
    before = store.values.copy()
    digest = store.digest()
    saved = store.scratch(300, 650)
    store.perturb(300, 650, 7, 1, 4, 123, saved)
    changed = np.nonzero(store.values != before)[0]
    assert changed.min() >= 300 and changed.max() < 650 and changed.size > 300
    assert store.digest() != digest
    store.restore(300, 650, saved)
    np.testing.assert_array_equal(store.values, before)
    assert store.digest() == digest
    store.update(0, 300, 7, 0, 4, 1)
    assert np.abs(store.values[:300].astype(int) - before[:300]).max() == 1
    np.testing.assert_array_equal(store.values[300:], before[300:])


# One replica's life: a theta built from integer arithmetic only (so its bits rest
# on this code alone), then 20 rounds of K = 5 block votes, with either kind of
# perturbation. It runs in fresh interpreters: `report` gets the theta hashes.
REPLICA = """
import numpy as np
from fedzo.edge import kernel
from fedzo.edge.learning import perturbation
from fedzo.edge.learning.fixedpoint import FixedPoint, ParameterStore
from fedzo.edge.learning.layout import partition
start = ((np.arange(5123) * 7919) % 2001 - 1000) / 1000.0
for kind in perturbation.KINDS:
    store = ParameterStore.from_float(start, FixedPoint(np.int16, 12))
    for round_ in range(20):
        for k, (lo, hi) in enumerate(partition(store.d, 5)):
            vote = (round_ + k) % 3 - 1
            if vote:
                perturbation.update(store, kind, lo, hi, 42, k, round_, 3 * vote)
    report[kind] = store.digest().hex()
report["backend"] = kernel.backend()
"""
# The Rademacher replica's hash, recorded: it rests only on DESIGN.md §4's streams and
# the fixed-point format, so a change means agents of two versions would diverge.
RECORDED_RADEMACHER_HASH = "66574c1f0581e375"


def test_replicas_that_apply_the_same_votes_end_bit_identical_in_any_process():
    from isolated import in_fresh_interpreter

    from fedzo.edge import kernel
    runs = [in_fresh_interpreter(REPLICA, env={"FEDZO_KERNEL": backend, "PYTHONHASHSEED": seed})
            for backend in sorted(kernel.implementations()) for seed in ("1", "2024")]
    assert [r["backend"] for r in runs] == [b for b in sorted(kernel.implementations()) for _ in range(2)]
    assert all(r["rademacher"] == RECORDED_RADEMACHER_HASH for r in runs), runs
    assert len({r["gaussian"] for r in runs}) == 1, runs
    assert runs[0]["gaussian"] != runs[0]["rademacher"]          # the kind of perturbation matters


def test_actor_file_round_trip_and_errors(tmp_path):
    rng = np.random.default_rng(7)
    actor = Actor("hopper", 11, 3, rng.normal(size=5123).astype(np.float32),
                  rng.normal(size=11), rng.uniform(1, 2, 11), info={"return": 1234.5})
    path = tmp_path / "hopper.npz"
    actor.save(path)
    back = Actor.load(path)
    np.testing.assert_array_equal(back.theta, actor.theta)
    assert back.info == {"return": 1234.5} and back.task == "hopper"
    obs = rng.normal(size=11)
    np.testing.assert_array_equal(back.policy().act(obs), actor.policy().act(obs))
    with pytest.raises(FileNotFoundError, match="no actor file"):
        Actor.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a fedzo actor"):
        Actor.load(tmp_path / "junk.npz")


def test_gaussian_perturbation_restores_exactly_and_the_update_draws_the_same_vector():
    from fedzo.edge.learning import perturbation
    rng = np.random.default_rng(8)
    store = ParameterStore.from_float(rng.normal(0, 1, 2000), FixedPoint(np.int16, 12))
    before = store.values.copy()
    saved = store.scratch(100, 900)
    perturbation.perturb(store, "gaussian", 100, 900, 5, 2, 7, 40, saved)
    moved = store.values[100:900].astype(int) - before[100:900]
    assert 20 < np.abs(moved).mean() < 60            # |N(0,1)| * 40 LSB on average ~ 32
    store.restore(100, 900, saved)
    np.testing.assert_array_equal(store.values, before)
    # The update draws the same vector as the perturbation of the same stream and round.
    perturbation.update(store, "gaussian", 100, 900, 5, 2, 7, 40)
    np.testing.assert_array_equal(store.values[100:900].astype(int) - before[100:900], moved)
