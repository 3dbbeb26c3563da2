"""`make install` says what it is doing before the long pip install (issue 12, item 7)."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_install_shows_progress(tmp_path):
    # A dry run (-n) into a venv path that does not exist: nothing is installed.
    plan = subprocess.run(["make", "-n", "-B", f"VENV={tmp_path / 'venv'}", "install"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout.splitlines()
    install = next(i for i, line in enumerate(plan) if "pip install" in line and ".[test" in line)
    assert "--quiet" not in plan[install]                        # before: silent for over a minute
    assert any(line.startswith("echo") and "installing fedzo" in line for line in plan[:install])


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_install_installs_the_ray_extra_and_goes_on_without_it(tmp_path):
    plan = subprocess.run(["make", "-n", "-B", f"VENV={tmp_path / 'venv'}", "install"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout
    assert ".[test,ray]" in plan                       # so `make test` runs the Ray tests
    assert "Ray did not install" in plan and ".[test]'" in plan.split("Ray did not install")[1]
