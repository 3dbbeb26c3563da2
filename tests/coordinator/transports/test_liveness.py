"""`fedzo simulate --link tcp` notices its agents are gone; a run nobody voted in fails (issue 12, item 6)."""
import sys

import pytest
from small_runs import KEY, Harness, small_config
from waiting import PATIENCE

from fedzo.cli import main
from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports import tcp
from fedzo.coordinator.transports.tcp import AgentsGone, simulate_tcp
from fedzo.edge.agent.runtime import AgentRuntime

QUIET = dict(log=lambda *a: None)


def test_simulate_tcp_stops_when_every_agent_process_is_gone(tmp_path):
    run = Run(small_config(agents=2, rounds=2), tmp_path / "run", **QUIET)
    # The agents' key file does not exist: each process exits at once (code 2).
    with pytest.raises(AgentsGone, match="agent 0 exit code 2: .*missing.key"):   # before: TimeoutError
        simulate_tcp(run, KEY, agent_args=["--key-file", str(tmp_path / "missing.key")],
                     timeout=PATIENCE, **QUIET)


def test_fedzo_simulate_exits_1_when_its_agents_are_gone(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tcp, "agent_command", lambda *args: [sys.executable, "-c", "print('no'); exit(3)"])
    args = [f"--{k.replace('_', '-')}={v}" for k, v in small_config(agents=2).to_dict().items() if k != "actor"]
    assert main(["simulate", "--quiet", "--out", str(tmp_path / "run"), *args]) == 1   # before: waited forever
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "every agent process exited" in err and "agent 1 exit code 3: no" in err


def test_a_run_nobody_voted_in_is_an_error(tmp_path):
    h = Harness(tmp_path, rounds=2)
    for _ in range(3):
        h.connect(AgentRuntime(**QUIET))
    while not h.runtime.done:                       # nobody votes: every round ends at its deadline
        h.now += 10.0
        h.dispatch(h.runtime.tick())
    summary = h.run.finish()
    assert summary["errors"] == ["no agent voted in any of the 2 rounds: nothing was learned or measured "
                                 "(see the agents' output)"]              # before: no errors, exit 0

