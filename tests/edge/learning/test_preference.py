"""Preference sources: the simulated panel, the coin-flip null control, and the comparison modes."""
import numpy as np
import pytest

from fedzo.edge.learning.agent_logic import ParS2ZPOAgent
from fedzo.edge.learning.algorithm import initial_store, load_actor
from fedzo.edge.learning.config import ConfigError, RunConfig
from fedzo.edge.learning.preference import Batch, CoinFlip, PreferenceSource, SimulatedPanel, make_preference
from fedzo.edge.tasks import make


def _batch(mean):
    return Batch(returns=np.array([mean, mean]))


def test_the_coin_ignores_the_batches_and_is_fair():
    coin = CoinFlip()
    # The same generator state gives the same answer whatever the batches hold.
    for seed in range(20):
        a = coin.compare(_batch(1000.0), _batch(0.0), np.random.default_rng(seed))
        b = coin.compare(_batch(0.0), _batch(1000.0), np.random.default_rng(seed))
        assert a == b and a in (-1, 1)
    answers = [coin.compare(_batch(1000.0), _batch(0.0), np.random.default_rng(s)) for s in range(4000)]
    assert abs(np.mean(answers)) < 4 * (1 / np.sqrt(4000))      # fair within four standard errors
    assert coin.comparisons == 4040 and coin.reviewer_votes == 0


def test_the_panel_follows_the_returns_where_the_coin_does_not():
    panel = SimulatedPanel("linear", 101, scale=10.0)
    rng = np.random.default_rng(0)
    assert all(panel.compare(_batch(20.0), _batch(0.0), rng) == 1 for _ in range(50))
    assert panel.reviewer_votes == 50 * 101


def test_make_preference_follows_the_config():
    assert isinstance(make_preference(RunConfig(preference="coin")), CoinFlip)
    panel = make_preference(RunConfig(panel_link="logistic", panel_reviewers=11, panel_scale=3.0))
    assert isinstance(panel, SimulatedPanel) and (panel.link, panel.reviewers, panel.scale) == ("logistic", 11, 3.0)
    with pytest.raises(ConfigError, match="preference"):
        RunConfig(preference="oracle")
    with pytest.raises(ConfigError, match="comparison"):
        RunConfig(comparison="two-sided")


class _Recorder(PreferenceSource):
    """A preference source that keeps what it was shown (the batches' mean returns)."""

    comparisons = reviewer_votes = 0

    def __init__(self):
        self.shown = []

    def compare(self, candidate, baseline, rng, where=None):
        self.shown.append((candidate.mean_return, baseline.mean_return))
        self.comparisons += 1
        return 1


def _agent(comparison, recorder):
    config = RunConfig(task="hopper", agents=2, batch=1, horizon=80, seed=5, comparison=comparison)
    actor = load_actor(config)
    return ParS2ZPOAgent(config, 0, initial_store(config, actor), make(config.task), actor, recorder)


def test_the_symmetric_comparison_shows_theta_minus_mu_v_as_the_baseline_and_restores_theta():
    one_sided, symmetric = _Recorder(), _Recorder()
    a, b = _agent("one-sided", one_sided), _agent("symmetric", symmetric)
    before = a.store.values.copy()
    a.vote(0)
    b.vote(0)
    # Same episodes, same candidate theta + mu v: the candidates' returns agree ...
    assert one_sided.shown[0][0] == symmetric.shown[0][0]
    # ... while the baseline is theta (one-sided) or theta - mu v (symmetric).
    assert one_sided.shown[0][1] != symmetric.shown[0][1]
    np.testing.assert_array_equal(a.store.values, before)
    np.testing.assert_array_equal(b.store.values, before)
    assert b.episodes == a.episodes == 2          # the same budget: 2D episodes per comparison
