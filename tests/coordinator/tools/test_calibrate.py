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
