"""The server's loop keeps serving its links while a round's record (evaluation, checkpoint) is
written (issue 12, item 4).

Each test makes one evaluation last until something happens that only a
loop still serving its links can bring about, and checks that it did. The
evaluation is the real one, repeated until then: it computes as hard as a
long one would. With the old loop, which evaluated on the loop's own thread,
that never happens: the evaluation gives up after PATIENCE and the test
fails (the serial agent, meanwhile, loses its link again and again).
"""
import json
import threading
import time

import numpy as np
import pytest
from small_runs import KEY, run_small, small_config
from waiting import PATIENCE, wait_until

import fedzo.coordinator.run.lifecycle as lifecycle
from fedzo.coordinator.run.folder import CHECKPOINT
from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.server import Server
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.agent.serial import run_agent_serial
from fedzo.edge.agent.tcp import run_agent_tcp
from fedzo.firmware_sim.line import SerialLine

QUIET = dict(log=lambda *a: None)
BAUD = 115200
# The agent's serial link timeout: the old loop, evaluating, left its vote
# unacknowledged this long and the agent gave the link up. Far above any
# stall of a healthy link on a loaded machine.
AGENT_LINK_TIMEOUT = 3.0
# Fields of a metrics line that do not depend on the transport or the clock.
RESULT_FIELDS = ("round", "votes", "voters", "absent", "episodes", "comparisons", "return", "return_se",
                 "return_std", "saturated", "theta_hash")


class Thread(threading.Thread):
    """fn() in a daemon thread; keeps its result or its exception."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.result, self.error = fn, None, None
        self.start()

    def run(self):
        try:
            self.result = self.fn()
        except BaseException as exc:     # surfaced by the test
            self.error = exc


def evaluation_lasting_until(monkeypatch, condition, seen: list, rounds=(0,)):
    """Make the evaluation of theta after each round in `rounds` repeat the real evaluation
    until condition(round) holds (at most PATIENCE); `seen` gets, for each, whether it held.
    Evaluations are counted from the first after this call (Run's initial one comes before)."""
    real = lifecycle.evaluate
    calls = []

    def lasting(task, policy, seeds, horizons):
        t = len(calls)
        calls.append(t)
        if t in rounds:
            limit = time.monotonic() + PATIENCE       # only stops a test that would hang
            while not condition(t) and time.monotonic() < limit:
                real(task, policy, seeds, horizons)
            seen.append(condition(t))
        return real(task, policy, seeds, horizons)

    monkeypatch.setattr(lifecycle, "evaluate", lasting)


def result_lines(folder) -> list:
    return [{k: m.get(k) for k in RESULT_FIELDS} for m in
            (json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines())]


def test_a_serial_link_stays_up_through_an_evaluation_that_outlasts_its_link_timeout(tmp_path, monkeypatch):
    """The evaluation after round 0 lasts until rounds 1 and 2 have closed: the agent's two
    votes had to be received and acknowledged meanwhile, each one within its 3 s link timeout."""
    config = small_config(agents=1, rounds=4, eval_every=1, eval_episodes=3)
    _, _, reference = run_small(tmp_path, "reference", **{k: getattr(config, k) for k in
                                                           ("agents", "rounds", "eval_every", "eval_episodes")})
    line = SerialLine(BAUD, index=0).start()
    try:
        run = Run(config, tmp_path / "serial", round_timeout=10 * PATIENCE, **QUIET)
        seen = []
        evaluation_lasting_until(monkeypatch, lambda t: run.runtime.round >= 3, seen)
        server = Server(run, KEY, listen=None, serial=[line.coordinator_port], baud=BAUD, **QUIET)
        runtime = AgentRuntime(agent_id=0, **QUIET)
        agent = Thread(lambda: run_agent_serial(line.agent_port, KEY, runtime, baud=BAUD,
                                                link_timeout=AGENT_LINK_TIMEOUT, reconnect_seconds=PATIENCE,
                                                **QUIET))
        server.serve(stop_after=3 * PATIENCE)
        summary = run.finish()
        agent.join(PATIENCE)
    finally:
        line.close()
    assert agent.error is None and runtime.done
    # Neither end lost the link: one session, one join, no link failure. (The old loop,
    # evaluating, left the agent's vote unacknowledged: it lost its link and joined again.)
    serial = summary["per_agent"][0]
    assert (agent.result.link_failures, agent.result.sessions, serial["link_failures"], serial["joins"]) \
        == (0, 1, 0, 1)
    assert serial["transport"] == "serial"
    assert seen == [True]                       # rounds 1 and 2 closed during the evaluation of round 0
    assert serial["env_steps"] and serial["peak_rss_bytes"] and summary["env_steps"] == serial["env_steps"]
    # The results are those of the in-process run: every line, in order, and the same theta.
    assert result_lines(tmp_path / "serial") == result_lines(tmp_path / "reference")
    assert summary["theta_hash"] == reference["theta_hash"] == runtime.logic.digest().hex()
    assert summary["return_final"] == reference["return_final"]
    np.testing.assert_array_equal(run.folder.load_checkpoint()["values"], run.store.values)
    assert run.folder.load_checkpoint()["next_round"] == config.rounds


def tcp_agents(server, runtimes, reconnect_seconds=PATIENCE):
    """One TCP agent thread per runtime."""
    return [Thread(lambda rt=rt: run_agent_tcp(server.address, KEY, rt, reconnect_seconds=reconnect_seconds,
                                               **QUIET))
            for rt in runtimes]


def test_the_closed_rounds_results_reach_tcp_agents_while_it_is_evaluated(tmp_path, monkeypatch):
    """The closed round's frames leave first: the evaluation of theta after round 0 lasts
    until both agents have received and applied round 0's RoundResult."""
    config = small_config(agents=2, rounds=3, eval_every=1, eval_episodes=2)
    run = Run(config, tmp_path / "tcp", round_timeout=10 * PATIENCE, **QUIET)
    runtimes = [AgentRuntime(agent_id=k, **QUIET) for k in range(2)]
    seen = []
    # The evaluation after round 0 lasts until both agents have applied round 0's result.
    evaluation_lasting_until(monkeypatch, lambda t: all((rt.round or 0) > t for rt in runtimes), seen)
    server = Server(run, KEY, **QUIET)
    agents = tcp_agents(server, runtimes)
    server.serve(stop_after=3 * PATIENCE)
    summary = run.finish()
    for agent in agents:
        agent.join(PATIENCE)
    assert seen == [True]
    assert all(a.error is None and rt.done for a, rt in zip(agents, runtimes))
    assert all(rt.logic.digest().hex() == summary["theta_hash"] for rt in runtimes)


def test_a_failed_record_stops_the_run_with_its_error_and_keeps_the_agents(tmp_path, monkeypatch):
    """The evaluation after the last round fails once every agent has sent its report: the
    run must not have said Bye(DONE) (the agents stay for a --resume), and serve() raises the
    evaluation's own exception."""
    config = small_config(agents=2, rounds=2)
    run = Run(config, tmp_path / "fails", round_timeout=10 * PATIENCE, **QUIET)

    def failing(task, policy, seeds, horizons):
        wait_until(lambda: all(s.report is not None for s in run.runtime.slots), "both reports")
        raise RuntimeError("the evaluation failed")

    monkeypatch.setattr(lifecycle, "evaluate", failing)
    server = Server(run, KEY, **QUIET)
    runtimes = [AgentRuntime(agent_id=k, **QUIET) for k in range(2)]
    agents = tcp_agents(server, runtimes, reconnect_seconds=1.0)   # give up soon after the run stops
    with pytest.raises(RuntimeError, match="the evaluation failed"):
        server.serve(stop_after=3 * PATIENCE)
    with pytest.raises(RuntimeError, match="the evaluation failed"):
        run.finish()
    for agent in agents:
        agent.join(PATIENCE)
    assert not any(rt.done for rt in runtimes)         # no Bye(DONE): they would join a resumed run
    # The checkpoint is round 0's: --resume goes on from the round whose record failed.
    assert run.folder.load_checkpoint()["next_round"] == 1
    assert not (tmp_path / "fails" / (CHECKPOINT + ".tmp")).exists()
