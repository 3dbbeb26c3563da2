"""The agent's back-off, give-up clock and waiting lines (issue 12, item 3).

Before: every connect reset the back-off and the give-up clock, so a
coordinator that accepted and closed (a wrong key) kept the agent retrying
for ever; a closed port was silent until the agent gave up (62 s).
"""
import socket
import subprocess
import sys
import threading

import pytest
from serving import free_port, serve_in_thread
from small_runs import KEY, small_config
from waiting import PATIENCE, wait_until

from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.server import Server
from fedzo.edge.agent.exit_codes import EXIT_GAVE_UP
from fedzo.edge.agent.reconnect import FIRST_DELAY, MAX_DELAY, NOTE_SECONDS, AgentGaveUp, Reconnect
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.agent.tcp import run_agent_tcp
from fedzo.edge.agent.waits import FIRST_NOTE_SECONDS, NOTE_EVERY_SECONDS, WaitNotes
from fedzo.edge.protocol.keyfile import write_key_file

QUIET = dict(log=lambda *a: None)


class Clock:
    """A clock that sleeping advances."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_failed_attempts_back_off_and_only_a_welcome_resets_the_wait():
    clock, lines = Clock(), []
    reconnect = Reconnect(60.0, "host:1", lines.append, clock=clock, sleep=clock.sleep)
    delays = []
    for _ in range(8):
        before = clock.now
        reconnect.failed("the coordinator closed the connection before welcoming this agent")
        delays.append(clock.now - before)
    assert delays[0] == FIRST_DELAY and delays == sorted(delays) and delays[-1] == MAX_DELAY
    reconnect.heard()                  # an authenticated message: the give-up clock restarts ...
    before = clock.now
    reconnect.failed("again")
    assert clock.now - before == pytest.approx(MAX_DELAY)           # ... but not the back-off
    reconnect.welcomed()
    before = clock.now
    reconnect.failed("again")
    assert clock.now - before == pytest.approx(FIRST_DELAY)


def test_the_give_up_clock_runs_through_failed_connects():
    clock = Clock()
    reconnect = Reconnect(10.0, "host:1", QUIET["log"], clock=clock, sleep=clock.sleep)
    with pytest.raises(AgentGaveUp, match=r"no answer from the coordinator at host:1 for 10 s \(closed\)"):
        for _ in range(1000):          # before: each connect reset it, so this never ended
            reconnect.failed("closed")
    assert reconnect.failures < 10


def test_waiting_lines_are_few_and_say_why():
    clock, lines = Clock(), []
    reconnect = Reconnect(1000.0, "host:1", lines.append, clock=clock, sleep=clock.sleep)
    for _ in range(100):
        reconnect.failed("connection refused")
    assert lines[0].startswith("agent: waiting for the coordinator at host:1 (connection refused); "
                               f"retrying every {MAX_DELAY:.0f} s at most, giving up after 1000 s")
    assert 1 < len(lines) <= 2 + clock.now / NOTE_SECONDS and "still waiting" in lines[-1]
    reconnect.failed("timed out")                                   # a new reason is said at once
    assert "(timed out)" in lines[-1]


def test_a_wait_says_what_it_waits_for_a_few_times():
    clock, lines = Clock(), []
    notes = WaitNotes(lines.append, clock=clock)
    for _ in range(int(3600 / 0.5)):                                # an hour of silence, polled twice a second
        clock.sleep(0.5)
        notes.tick("the run to start")
    assert lines[0] == f"agent: waiting for the run to start ({FIRST_NOTE_SECONDS:.0f} s so far)"
    assert len(lines) <= 6 + 3600 / NOTE_EVERY_SECONDS
    notes.progress()
    clock.sleep(FIRST_NOTE_SECONDS - 1)
    notes.tick("x")
    assert not lines[-1].startswith("agent: waiting for x")


def test_an_agent_pointed_at_a_closed_port_says_so_then_gives_up_with_its_code(tmp_path):
    key = tmp_path / "run.key"
    write_key_file(key, KEY)
    port = free_port()
    command = [sys.executable, "-m", "fedzo.cli", "agent", "--connect", f"127.0.0.1:{port}", "--key-file", str(key)]
    waiting = subprocess.Popen(command + ["--reconnect-seconds", "600"], stdout=subprocess.PIPE, text=True)
    try:
        first = waiting.stdout.readline()          # before: nothing for the whole give-up time
        assert first.startswith(f"agent: waiting for the coordinator at 127.0.0.1:{port} (connection refused); "
                                f"retrying every {MAX_DELAY:.0f} s at most, giving up after 600 s")
    finally:
        waiting.kill()
        waiting.wait()
    gave_up = subprocess.run(command + ["--reconnect-seconds", "1"], capture_output=True, text=True,
                             timeout=PATIENCE)
    assert gave_up.returncode == EXIT_GAVE_UP
    assert gave_up.stderr.strip().endswith(f"gave up: no answer from the coordinator at 127.0.0.1:{port} for 1 s "
                                           "(connection refused); start it, check the address, or allow "
                                           "longer with --reconnect-seconds")


def test_connections_closed_before_a_welcome_back_off_and_end_in_giving_up():
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def accept_and_close():            # a coordinator that takes every connection and says nothing
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            accepted.append(sock)
            sock.close()

    threading.Thread(target=accept_and_close, daemon=True).start()
    outcome = []

    def agent():
        try:
            run_agent_tcp(listener.getsockname(), KEY, AgentRuntime(**QUIET), reconnect_seconds=1.0, **QUIET)
        except AgentGaveUp as exc:
            outcome.append(exc)

    thread = threading.Thread(target=agent, daemon=True)
    thread.start()
    thread.join(PATIENCE)              # before: it never gave up (each connect reset the clock)
    listener.close()
    assert not thread.is_alive() and outcome
    assert "closed the connection before welcoming this agent" in str(outcome[0])   # a close or a reset
    # With the back-off doubling from FIRST_DELAY, one second allows a handful of attempts
    # (a busy machine allows fewer); before, the wait went back to FIRST_DELAY each time.
    assert len(accepted) <= 6


def test_a_joined_agent_says_it_waits_for_the_run_to_start(tmp_path):
    run = Run(small_config(agents=2, rounds=1), tmp_path / "run", **QUIET)
    server = Server(run, KEY, **QUIET)
    thread, errors = serve_in_thread(server)
    lines = []
    first = threading.Thread(target=run_agent_tcp, args=(server.address, KEY, AgentRuntime(log=lines.append)),
                             kwargs=dict(log=lines.append), daemon=True)
    first.start()
    wait_until(lambda: any("waiting for the run to start" in l for l in lines),
               "the lone agent to say it waits for the run to start")
    run_agent_tcp(server.address, KEY, AgentRuntime(**QUIET), **QUIET)
    thread.join(PATIENCE)
    first.join(PATIENCE)
    assert not thread.is_alive() and not errors and run.runtime.done
