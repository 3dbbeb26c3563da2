"""A user's task that cannot be built is one line from every command, and no run folder is left."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "cartpole"


@pytest.fixture
def bad_description(tmp_path):
    """The example with a description whose reward weight is text."""
    shutil.copy(EXAMPLE / "cartpole.xml", tmp_path)
    description = json.loads((EXAMPLE / "cartpole.task.json").read_text())
    description["reward"][1]["weight"] = "one"
    (tmp_path / "cartpole.task.json").write_text(json.dumps(description))
    return str(tmp_path / "cartpole.xml")


def fedzo(*argv, cwd):
    return subprocess.run([sys.executable, "-m", "fedzo", *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("spec, message", [
    ("no_such_module:Robot", "task no_such_module:Robot: no module named 'no_such_module'"),
    ("json:NoRobot", "task json:NoRobot: json has no 'NoRobot'"),
    ("robots/missing.xml", "no MJCF file at robots/missing.xml"),
    (None, "cartpole.task.json: reward[1].weight must be a finite number, got 'one'"),
])
def test_every_command_says_what_is_wrong_in_one_line(tmp_path, bad_description, spec, message):
    spec = spec or bad_description
    actor = str(EXAMPLE / "cartpole.npz")
    commands = [
        ["simulate", "--task", spec, "--actor", actor, "--hidden", "32,32", "--panel-scale", "55", "--link",
         "inproc", "--out", str(tmp_path / "run")],
        ["pretrain", "--task", spec, "--hidden", "32,32", "--iterations", "1", "--out", str(tmp_path / "a.npz")],
        ["eval", "--task", spec, "--policy", actor],
        ["calibrate", "--task", spec, "--actor", actor, "--hidden", "32,32", "--samples", "1"],
    ]
    for argv in commands:
        done = fedzo(*argv, cwd=tmp_path)
        assert done.returncode != 0 and message in done.stderr, (argv[0], done.stderr)
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, (argv[0], done.stderr)
    assert not (tmp_path / "run").exists() and not (tmp_path / "a.npz").exists()
