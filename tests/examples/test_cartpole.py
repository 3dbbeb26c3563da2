"""examples/cartpole: its README's commands, run as a person would run them from a fresh clone."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fedzo.edge.policy.mlp import Actor

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "cartpole"


def readme_commands() -> list:
    """The `fedzo ...` lines of the README's first shell block, in order."""
    text = (EXAMPLE / "README.md").read_text()
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split() for line in block.splitlines() if line.startswith("fedzo ")]


def run_commands(tmp_path, commands) -> dict:
    """Run each command (as `python -m fedzo`) in a copy of the example; their outputs by command."""
    shutil.copytree(EXAMPLE, tmp_path / "examples" / "cartpole")
    outputs = {}
    for argv in commands:
        done = subprocess.run([sys.executable, "-m", "fedzo", *argv[1:]], cwd=tmp_path, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr[-2000:]}"
        outputs[argv[1]] = outputs.get(argv[1], "") + done.stdout
    return outputs


def test_the_readme_lists_the_steps():
    assert [argv[1] for argv in readme_commands()] == ["pretrain", "eval", "calibrate", "simulate", "export", "eval",
                                                       "eval"]


def test_pretrain_remakes_the_shipped_actor_and_a_few_rounds_fine_tune_it(tmp_path):
    """The README's commands without calibrate and the null control, for 3 rounds."""
    commands = []
    for argv in readme_commands():
        if argv[1] == "calibrate":
            continue
        if argv[1] == "simulate":
            argv = [a for a in argv if a != "--with-null"]
            argv[argv.index("--rounds") + 1] = "3"
        commands.append(argv)
    outputs = run_commands(tmp_path, commands)
    shipped, remade = Actor.load(EXAMPLE / "cartpole.npz"), Actor.load(tmp_path / "examples/cartpole/cartpole.npz")
    assert (remade.task, remade.hidden) == ("cartpole", (32, 32))
    for field in ("theta", "obs_mean", "obs_std"):
        assert np.array_equal(getattr(remade, field), getattr(shipped, field)), field
    run = tmp_path / "runs" / "cartpole"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["rounds"] == 3 and summary["d"] == 1249 and summary["eval_horizon"] == 500
    assert all(a["transport"] == "tcp" for a in summary["per_agent"])       # agent processes built the task
    tuned = Actor.load(run / "tuned.npz")
    assert tuned.info["theta_hash"] == json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["theta_hash"]
    assert "cartpole     float: return 393.3" in outputs["eval"]
    assert (run / "replay.html").is_file() and "3 episode(s), start on the left" in outputs["eval"]


@pytest.mark.slow
def test_the_readme_as_written_fine_tunes_far_beyond_the_null(tmp_path):
    outputs = run_commands(tmp_path, readme_commands())
    assert json.loads(outputs["calibrate"])["scale"] == pytest.approx(55.123, abs=1e-3)
    run = tmp_path / "runs" / "cartpole"
    summary = json.loads((run / "summary.json").read_text())
    null = json.loads((run / "null-control" / "summary.json").read_text())
    assert summary["return_initial"] == null["return_initial"]
    assert summary["gain"] > 10 * summary["gain_se"] and summary["gain"] > null["gain"] + 300
    assert "cartpole     float: return 998.7" in outputs["eval"]
