"""`fedzo calibrate`: the panel scale's measurements and the vote-accuracy diagnostic."""
import json
import subprocess
import sys

import pytest

from fedzo.coordinator.tools.calibrate import panel_majority_probability, vote_accuracy
from fedzo.edge.learning.config import RunConfig


def test_the_majority_of_a_fair_panel_is_a_coin_and_a_slight_lean_is_amplified():
    assert panel_majority_probability(0.5, 101) == pytest.approx(0.5)
    assert panel_majority_probability(0.6, 101) == pytest.approx(0.98, abs=0.01)   # as preference.py says
    assert panel_majority_probability(0.6, 1) == pytest.approx(0.6)
    assert panel_majority_probability(0.0, 101) == 0.0


def test_vote_accuracy_reports_agreement_with_the_reference_direction():
    report = vote_accuracy(RunConfig(task="hopper", horizon=40, batch=1), samples=6, reference_episodes=3)
    assert report["samples"] == 6 and report["horizon"] == 40
    assert 0.0 <= report["sign_agreement"] <= 1.0 and 0.0 <= report["panel_agreement"] <= 1.0
    assert report["sign_agreement"] * 6 == round(report["sign_agreement"] * 6)      # a count over 6 samples
    assert report["median_abs_diff_shown"] > 0 and report["median_abs_diff_reference"] > 0
    assert report == vote_accuracy(RunConfig(task="hopper", horizon=40, batch=1), samples=6,
                                   reference_episodes=3)                             # deterministic


def test_the_command_refuses_a_bad_horizon_with_its_name():
    out = subprocess.run([sys.executable, "-m", "fedzo", "calibrate", "--task", "hopper", "--accuracy",
                          "--horizon", "5000"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "horizon" in out.stderr and "Traceback" not in out.stderr
    ok = subprocess.run([sys.executable, "-m", "fedzo", "calibrate", "--task", "hopper", "--accuracy",
                         "--horizon", "30", "--samples", "2", "--reference-episodes", "1"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and json.loads(ok.stdout)["samples"] == 2


def test_the_symmetric_probe_compares_against_theta_minus_mu_v_and_restores_theta():
    from fedzo.coordinator.tools.calibrate import _Probe
    probes = {c: _Probe(RunConfig(task="hopper", horizon=40, batch=1, comparison=c)) for c in ("one-sided", "symmetric")}
    before = probes["symmetric"].store.digest()
    (base_1, cand_1), (base_2, cand_2) = (probes[c].paired(2, 3, [11]) for c in ("one-sided", "symmetric"))
    assert cand_1 == cand_2 and base_1 != base_2          # same candidate, another baseline
    assert probes["symmetric"].store.digest() == before    # theta restored bit for bit


def test_vote_accuracy_at_a_runs_trained_theta(tmp_path):
    from small_runs import run_small
    run, _, summary = run_small(tmp_path, horizon=40, rounds=4, alpha=0.05)
    out = subprocess.run([sys.executable, "-m", "fedzo", "calibrate", "--accuracy", "--run", str(run.folder.path),
                          "--samples", "3", "--reference-episodes", "1", "--comparison", "symmetric"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["horizon"] == 40 and report["batch"] == 1 and report["comparison"] == "symmetric"
    at_start = vote_accuracy(RunConfig.from_dict({**run.config.to_dict(), "comparison": "symmetric"}),
                             samples=3, reference_episodes=1)
    assert report["median_abs_diff_shown"] != at_start["median_abs_diff_shown"]   # it measured the trained theta
    missing = subprocess.run([sys.executable, "-m", "fedzo", "calibrate", "--accuracy", "--run", str(tmp_path / "none")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "not a run folder" in missing.stderr and "Traceback" not in missing.stderr


def test_the_vote_of_n_comparisons_is_their_majority():
    from fedzo.coordinator.tools.calibrate import vote_probability
    assert vote_probability([0.8]) == pytest.approx(0.8)
    assert vote_probability([0.8] * 3) == pytest.approx(0.8 ** 3 + 3 * 0.8 ** 2 * 0.2)   # 2 or 3 of 3
    assert vote_probability([0.5, 0.9]) == pytest.approx(0.5 * 0.9 + 0.5 * (0.5 * 0.1 + 0.5 * 0.9))
    one = vote_accuracy(RunConfig(task="hopper", horizon=40, batch=1), samples=4, reference_episodes=2)
    three = vote_accuracy(RunConfig(task="hopper", horizon=40, batch=1, comparisons=3), samples=4,
                          reference_episodes=2)
    assert three["comparisons"] == 3 and one["comparisons"] == 1
    assert 0.0 <= three["panel_agreement"] <= 1.0 and three["sign_agreement"] * 4 == round(three["sign_agreement"] * 4)
