"""The coordinator answers Hellos it cannot accept, a few per source address and window, counted."""
import os
import socket

from serving import serve_in_thread
from small_runs import KEY, small_config
from waiting import PATIENCE

from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.refusals import REFUSALS_PER_SOURCE, Refusals
from fedzo.coordinator.transports.server import Server
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.agent.tcp import run_agent_tcp
from fedzo.edge.protocol import AGENT, Endpoint, ErrorCode, Hello, Refusal, Session

QUIET = dict(log=lambda *a: None)
WRONG_KEY = os.urandom(32)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def refusal():
    return Refusal(ErrorCode.AUTH_FAILED, os.urandom(16))


def test_answers_are_limited_per_source_and_window_and_counted():
    clock, notes = Clock(), []

    class Tally:
        def note(self, what):
            notes.append(what)

    refusals = Refusals(Tally(), per_source=3, window=60.0, clock=clock)
    answers = [refusals.answer("10.0.0.1", refusal()) for _ in range(5)]
    assert [a is not None for a in answers] == [True, True, True, False, False]
    assert refusals.answer("10.0.0.2", refusal()) is not None      # another source has its own allowance
    clock.now = 60.0                                                # the window passed
    assert refusals.answer("10.0.0.1", refusal()) is not None
    assert (refusals.sent, refusals.withheld) == (5, 2)
    assert notes.count("hellos refused (wrong key)") == 5
    assert notes.count("hellos refused without an answer (wrong key; rate limit per source)") == 2


def test_the_table_of_sources_is_bounded():
    clock = Clock()
    refusals = Refusals(per_source=1, window=10.0, max_sources=2, clock=clock)
    assert refusals.answer("a", refusal()) and refusals.answer("b", refusal())
    assert refusals.answer("c", refusal()) is None                 # full, nothing expired
    clock.now = 10.0
    assert refusals.answer("c", refusal()) is not None             # expired sources are forgotten
    assert len(refusals._sources) <= 2


def _hello_under_the_wrong_key(address):
    """One connection: a Hello under WRONG_KEY; the messages read until the coordinator closes."""
    endpoint = Endpoint(Session(AGENT, WRONG_KEY))
    with socket.create_connection(address, timeout=PATIENCE) as sock:
        sock.sendall(endpoint.send(Hello()))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return endpoint.feed(data)


def test_a_stranger_hammering_with_wrong_keys_gets_a_few_answers_then_silence(tmp_path):
    run = Run(small_config(agents=1, rounds=1), tmp_path / "run", **QUIET)
    server = Server(run, KEY, **QUIET)
    thread, errors = serve_in_thread(server)
    tries = REFUSALS_PER_SOURCE + 3
    answers = [_hello_under_the_wrong_key(server.address) for _ in range(tries)]   # each closed by the server
    assert all(len(a) == 1 and isinstance(a[0], Refusal) and a[0].code == ErrorCode.AUTH_FAILED
               for a in answers[:REFUSALS_PER_SOURCE])
    assert answers[REFUSALS_PER_SOURCE:] == [[]] * 3                # closed without an answer
    assert (server.refusals.sent, server.refusals.withheld) == (REFUSALS_PER_SOURCE, 3)
    assert server.tally.totals["hellos refused (wrong key)"] == REFUSALS_PER_SOURCE
    run_agent_tcp(server.address, KEY, AgentRuntime(**QUIET), **QUIET)   # the run is unharmed
    thread.join(PATIENCE)
    assert not thread.is_alive() and not errors and run.runtime.done
    assert not server.links or all(l.joined for l in server.links)   # the strangers' links are forgotten
