"""--help, the progress line, metrics.jsonl's fields, round numbers and Ctrl-C (issue 12, item 7)."""
import json
import re
from dataclasses import fields
from pathlib import Path

import pytest
from serving import free_port
from small_runs import run_small, small_config

from fedzo.cli import main
from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.inproc import run_inproc
from fedzo.coordinator.transports.server import Server
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.learning.config import FIELD_CHOICES, FIELD_MEANINGS, RunConfig
from fedzo.coordinator.run.folder import METRICS

README = Path(__file__).resolve().parents[3] / "README.md"


def flat(text: str) -> str:
    """text without whitespace (argparse wraps lines, also after a hyphen)."""
    return "".join(text.split())


@pytest.mark.parametrize("command", ["simulate", "coordinator"])
def test_help_shows_every_run_options_meaning_default_and_choices(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = flat(capsys.readouterr().out)
    assert set(FIELD_MEANINGS) == {f.name for f in fields(RunConfig)}
    for f in fields(RunConfig):
        default = getattr(RunConfig(), f.name)
        # before: "--panel-scale PANEL_SCALE (default 0.0)" and nothing else
        assert flat(FIELD_MEANINGS[f.name]) in text and flat(f"(default {default!r}") in text, f.name
        if f.name in FIELD_CHOICES:
            assert flat("one of " + ", ".join(FIELD_CHOICES[f.name])) in text, f.name
    assert "--round-timeout" in text and "default120" in text


def test_the_command_list_says_the_coordinator_serves_serial_too(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert flat("serve a run to agents over TCP and serial ports") in flat(capsys.readouterr().out)


def test_rounds_are_numbered_from_0_in_the_progress_line_and_metrics(tmp_path):
    logs = []
    config = small_config(rounds=2)
    run = Run(config, tmp_path / "run", log=logs.append)
    run_inproc(run, [AgentRuntime(log=logs.append) for _ in range(config.agents)], b"k" * 32,
               log=lambda *a: None)
    progress = [line for line in logs if line.startswith("round ")]
    # before: "round 1/2 | ..." for the round metrics.jsonl calls 0
    assert [p.split(" |")[0] for p in progress] == ["round 0 (1/2 done)", "round 1 (2/2 done)"]
    assert [json.loads(line)["round"] for line in (tmp_path / "run" / METRICS).read_text().splitlines()] == [0, 1]
    assert any(re.match(r"agent 0: round 0 \(1/2\) vote", line) for line in logs)


def test_every_metrics_field_and_the_progress_symbols_are_explained_in_the_readme(tmp_path):
    run_small(tmp_path, "short", rounds=1, horizon=100)          # with return_train_horizon
    record = json.loads((tmp_path / "short" / METRICS).read_text().splitlines()[0])
    readme = README.read_text()
    table = readme[readme.index("| field | meaning |"):]
    for key in record:
        assert f"`{key}`" in table.split("\n\n")[0], key
    for words in ("`(earlier)`", "`+` it found", "`-` worse", "`0` no vote"):
        assert words in readme


def test_ctrl_c_says_how_to_resume(tmp_path, monkeypatch, capsys):
    def interrupted(self, *a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(Server, "serve", interrupted)
    out = tmp_path / "lab"
    args = [f"--{k.replace('_', '-')}={v}" for k, v in small_config().to_dict().items() if k != "actor"]
    assert main(["coordinator", "--listen", f"127.0.0.1:{free_port()}", "--out", str(out), *args]) == 130
    err = capsys.readouterr().err
    assert f"`fedzo coordinator --resume {out}` continues the run" in err       # before: "fedzo: interrupted"
    assert f"interrupted with 0 of {small_config().rounds} rounds saved" in err


def test_the_rounds_saved_are_the_checkpoints_not_the_rounds_closed(tmp_path):
    """Rounds close on the loop and are recorded after (coordinator/run/recorder.py): what an
    interrupted run reports is what its checkpoint holds."""
    run, _, _ = run_small(tmp_path, "done", rounds=2)
    assert run.checkpointed_rounds == 2
    resumed = Run(small_config(rounds=3), tmp_path / "done", resume=True, extend=True, log=lambda *a: None)
    assert resumed.checkpointed_rounds == 2 and resumed.runtime.round == 2
