"""A refused agent is told why and stops (issue 12, item 3), over TCP and serial.

Before: a wrong key (or another run's) got no answer at all; the agent printed
"the coordinator closed the connection" every 30 s and never exited. An agent
over its memory budget took a slot before it found out. Now the coordinator
answers a Hello it cannot accept with an unauthenticated Refusal, the agent
takes it only as the answer to its own Hello, prints one line and exits with
EXIT_REFUSED; the budget is checked against the Challenge's terms.
"""
import os
import selectors
import subprocess
import sys
import threading
import time

import pytest
from serving import serve_in_thread
from small_runs import KEY, small_config
from waiting import PATIENCE

from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.server import Server
from fedzo.edge.agent.exit_codes import EXIT_REFUSED
from fedzo.edge.agent.refused import AgentRefused, BudgetTooSmall
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.agent.serial import run_agent_serial
from fedzo.edge.agent.tcp import run_agent_tcp
from fedzo.edge.protocol import ErrorCode, Refusal, seal_refusal
from fedzo.edge.protocol.keyfile import write_key_file
from fedzo.firmware_sim.line import SerialLine

QUIET = dict(log=lambda *a: None)
BAUD = 115200
OTHER_RUN_KEY = bytes.fromhex("a3" * 8 + "5c" * 8 + "17" * 16)   # a valid key, not this run's
KEY_REFUSED = "the coordinator does not accept this key (wrong key or another run's)"


def _serving(tmp_path, name, agents=1, rounds=1, **server_options):
    run = Run(small_config(agents=agents, rounds=rounds), tmp_path / name, **QUIET)
    server = Server(run, KEY, **QUIET, **server_options)
    return run, server


@pytest.mark.parametrize("key", [os.urandom(32), OTHER_RUN_KEY], ids=["wrong key", "another run's key"])
def test_an_agent_with_a_key_that_is_not_the_runs_is_refused_at_once_over_tcp(tmp_path, key):
    run, server = _serving(tmp_path, "tcp")
    thread, errors = serve_in_thread(server)
    agent = AgentRuntime(**QUIET)
    with pytest.raises(AgentRefused, match=KEY_REFUSED.replace("(", r"\(").replace(")", r"\)")):
        # Before: no answer; it retried until it gave up (here PATIENCE) or for ever.
        run_agent_tcp(server.address, key, agent, reconnect_seconds=PATIENCE, **QUIET)
    assert agent.logic is None                                   # nothing of the run reached it
    assert server.refusals.sent == 1
    assert run.runtime.connected() == []
    run_agent_tcp(server.address, KEY, AgentRuntime(**QUIET), **QUIET)   # the run still completes
    thread.join(PATIENCE)
    assert not thread.is_alive() and not errors and run.runtime.done


def test_the_agent_command_prints_why_and_exits_refused(tmp_path):
    run, server = _serving(tmp_path, "cli")
    thread, errors = serve_in_thread(server)
    key_file = tmp_path / "other.key"
    write_key_file(key_file, OTHER_RUN_KEY)
    agent = subprocess.run([sys.executable, "-m", "fedzo.cli", "agent", "--connect",
                            f"127.0.0.1:{server.address[1]}", "--key-file", str(key_file)],
                           capture_output=True, text=True, timeout=PATIENCE)
    assert agent.returncode == EXIT_REFUSED
    assert agent.stderr.strip().splitlines()[-1].startswith(f"fedzo agent: refused: {KEY_REFUSED}")
    assert "closed the connection" not in agent.stdout
    run_agent_tcp(server.address, KEY, AgentRuntime(**QUIET), **QUIET)
    thread.join(PATIENCE)
    assert not thread.is_alive() and not errors


def test_an_agent_with_a_wrong_key_is_refused_over_a_serial_line(tmp_path):
    line = SerialLine(BAUD).start()
    try:
        run, server = _serving(tmp_path, "serial", listen=None, serial=[line.coordinator_port], baud=BAUD)
        thread, errors = serve_in_thread(server)
        agent = AgentRuntime(**QUIET)
        with pytest.raises(AgentRefused, match="does not accept this key"):
            run_agent_serial(line.agent_port, OTHER_RUN_KEY, agent, baud=BAUD, reconnect_seconds=PATIENCE,
                             **QUIET)
        assert agent.logic is None and server.refusals.sent == 1
        # The port serves the right agent next, and the run completes.
        run_agent_serial(line.agent_port, KEY, AgentRuntime(**QUIET), baud=BAUD, **QUIET)
        thread.join(PATIENCE)
        assert not thread.is_alive() and not errors and run.runtime.done
    finally:
        line.close()


def test_an_agent_over_its_memory_budget_leaves_before_taking_a_slot_and_the_run_goes_on(tmp_path):
    run, server = _serving(tmp_path, "budget", agents=2, rounds=2)
    thread, errors = serve_in_thread(server)
    small = AgentRuntime(memory_budget=10 * 2**20, **QUIET)       # 10 MiB: below any floor
    with pytest.raises(BudgetTooSmall, match="memory budget 10.0 MiB is below what this agent needs"):
        run_agent_tcp(server.address, KEY, small, reconnect_seconds=PATIENCE, **QUIET)
    assert small.logic is None                 # it learned d from the Challenge, never theta
    healthy = [AgentRuntime(**QUIET) for _ in range(2)]
    agents = [threading.Thread(target=run_agent_tcp, args=(server.address, KEY, a), kwargs=QUIET, daemon=True)
              for a in healthy]
    for t in agents:
        t.start()
    thread.join(2 * PATIENCE)
    for t in agents:
        t.join(PATIENCE)
    assert not thread.is_alive() and not errors and run.runtime.done
    assert run.runtime.rejected["declined"] == 1
    assert [s.joins for s in run.runtime.slots] == [1, 1]              # the small agent never held one
    assert [m["voters"] for m in run.folder.metrics()] == [2, 2]


def _forging(server, frames, count):
    """A check() for serve(): put a stranger's refusal on each joined agent's link, one a
    pass, `count` for each transport; each echoes a nonce no agent sent, as a stranger who
    did not see the Hello must."""
    def sent(kind):
        return sum(1 for k, _ in frames if k == kind)

    def check():
        for port in server.ports:
            if port.up and port.link.joined and sent("serial") < count:
                frame = seal_refusal(Refusal(ErrorCode.AUTH_FAILED, os.urandom(16)))
                port.endpoint.send_frame(frame, time.monotonic(), name="forged")
                frames.append(("serial", frame))
        for link in server._open_links():
            if link.joined and not link.closing and sent("tcp") < count:
                frame = seal_refusal(Refusal(ErrorCode.AUTH_FAILED, os.urandom(16)))
                link.outbox += link.endpoint.framing.wrap(frame)
                server.selector.modify(link.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, link)
                frames.append(("tcp", frame))
    return check


def test_a_strangers_refusals_do_not_stop_legitimate_agents(tmp_path):
    """Refusals that do not echo the agent's own Hello are counted and ignored, on TCP and
    on a serial line, whenever they come (before the Challenge, mid-run, after the end)."""
    line = SerialLine(BAUD).start()
    try:
        run, server = _serving(tmp_path, "forged", agents=2, rounds=2, serial=[line.coordinator_port],
                               baud=BAUD)
        frames = []
        thread, errors = serve_in_thread(server, check=_forging(server, frames, 6))
        tcp, serial = AgentRuntime(**QUIET), AgentRuntime(**QUIET)
        stats = {}
        t1 = threading.Thread(target=lambda: stats.update(tcp=run_agent_tcp(server.address, KEY, tcp, **QUIET)),
                              daemon=True)
        t2 = threading.Thread(target=lambda: stats.update(
            serial=run_agent_serial(line.agent_port, KEY, serial, baud=BAUD, **QUIET).counters), daemon=True)
        for t in (t1, t2):
            t.start()
        thread.join(2 * PATIENCE)
        for t in (t1, t2):
            t.join(PATIENCE)
    finally:
        line.close()
    assert not thread.is_alive() and not errors and run.runtime.done
    assert len(stats) == 2 and tcp.done and serial.done              # both ended with the run, no refusal
    assert {kind for kind, _ in frames} == {"tcp", "serial"}
    assert stats["tcp"].rejected["bad_refusal"] >= 1 and stats["serial"].rejected["bad_refusal"] >= 1
    assert [m["voters"] for m in run.folder.metrics()] == [2, 2]
