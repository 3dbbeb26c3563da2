"""The exception boundary between transports and the state machines (issue 11, item 2).

A message that authenticates but that a runtime cannot take is answered with
an Error, counted and its link closed; the run goes on. Uploaded models count
only if finite and inside the store's range.
"""
import socket

import numpy as np
import pytest
from hostile_agents import LyingAgent, model_of, wrong_size_upload
from serving import serve_with_agents
from small_runs import KEY, small_config

from fedzo.coordinator.rounds.boundary import BAD_INPUT, deliver
from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.inproc import run_inproc
from fedzo.edge.agent import tcp as agent_tcp
from fedzo.edge.agent.boundary import MessageRefused, take
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.learning.algorithm import ModelRejected, check_model
from fedzo.edge.learning.fixedpoint import FixedPoint
from fedzo.edge.protocol import Error, ErrorCode, LinkCounters, ModelDownload
from fedzo.edge.protocol.refusal import REFUSED_REASON

QUIET = dict(log=lambda *a: None)


@pytest.mark.parametrize("algo, lie", [("par-s2zpo", wrong_size_upload),
                                       ("fedavg-s2zpo", model_of(np.nan))])
def test_a_message_the_runtime_cannot_take_closes_that_link_and_the_tcp_run_goes_on(tmp_path, algo, lie):
    run = Run(small_config(agents=2, rounds=2, algo=algo), tmp_path / "run", **QUIET)
    honest = AgentRuntime(agent_id=0, **QUIET)
    liar = LyingAgent(lie, times=1, agent_id=1, **QUIET)
    server, errors = serve_with_agents(run, [honest, liar])
    assert not errors
    assert run.runtime.done and run.runtime.round == 2
    assert run.runtime.rejected[BAD_INPUT] == 1 and liar.lies == 1
    refused = sum(l.counters.rejected.get(REFUSED_REASON, 0) for l in server.links)
    assert refused == 1
    # The liar rejoined and both replicas end on the coordinator's theta.
    for agent in (honest, liar):
        np.testing.assert_array_equal(agent.logic.store.values, run.store.values)


def test_one_absurd_fedavg_model_is_refused_and_theta_stays_sane(tmp_path):
    config = small_config(agents=3, rounds=3, algo="fedavg-s2zpo")
    run = Run(config, tmp_path / "run", **QUIET)
    honest = [AgentRuntime(**QUIET) for _ in range(2)]
    liar = LyingAgent(model_of(3e38), **QUIET)
    summary = run_inproc(run, honest + [liar], KEY, **QUIET)
    assert summary["rounds"] == 3 and run.runtime.rejected[BAD_INPUT] == 1
    assert summary["saturated"] == 0                   # before: every coordinate of theta saturated
    metrics = run.folder.metrics()
    assert [m["round"] for m in metrics] == [0, 1, 2] and all(m["saturated"] == 0 for m in metrics)
    assert np.max(np.abs(run.store.to_float())) < run.store.fmt.max_value / 2
    for agent in honest:
        np.testing.assert_array_equal(agent.logic.store.values, run.store.values)


def test_check_model_takes_in_range_models_and_names_what_is_wrong():
    fmt = FixedPoint(np.int16, 12)            # range [-8, 8 - 2**-12]
    ok = np.linspace(-8, fmt.max_value, 5).astype(np.float32)
    assert check_model(ok, fmt, 5) is ok
    for bad, words in ((np.zeros(4, np.float32), "4 parameters"),
                       (np.array([0, np.inf, 0, 0, np.nan], np.float32), "2 non-finite"),
                       (np.array([0, 9, -9, 0, 0], np.float32), "2 values outside")):
        with pytest.raises(ModelRejected, match=words):
            check_model(bad, fmt, 5)


def test_deliver_turns_a_failure_into_error_count_disconnect_and_close():
    class Runtime:
        rejected = {}

        def received(self, link, msg):
            raise ValueError("cannot take this")

        def disconnected(self, link):
            return [("other", "round closed")]

    class Link:
        name, counters = "l", LinkCounters("l")

    runtime, link = Runtime(), Link()
    out = deliver(runtime, link, ModelDownload(0, 1, 0, b"\0" * 4), **QUIET)
    error, closed, close = out
    assert error[0] is link and isinstance(error[1], Error) and error[1].code == ErrorCode.BAD_MESSAGE
    assert "model_download refused: cannot take this" in error[1].text
    assert closed == ("other", "round closed") and close == (link, None)
    assert runtime.rejected[BAD_INPUT] == 1 and link.counters.rejected[REFUSED_REASON] == 1


def test_a_download_before_welcome_is_answered_not_raised():
    msg = ModelDownload(0, 1, 0, b"\0" * 4)
    out = take(AgentRuntime(**QUIET), msg, LinkCounters("a"))   # AttributeError before the fix
    assert len(out) == 1 and out[0].code == ErrorCode.BAD_MESSAGE


def test_the_agent_tcp_loop_answers_a_message_it_cannot_take_and_reconnects():
    class Breaks(AgentRuntime):
        def handle(self, msg):
            raise KeyError("broken")

    class FakeEndpoint:
        counters = LinkCounters("agent")
        sent = []

        def send(self, msg):
            self.sent.append(msg)
            return b"x"

        def feed(self, data):
            return [ModelDownload(0, 1, 0, b"\0" * 4)]

    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b"anything")
        endpoint = FakeEndpoint()
        from fedzo.edge.agent.reconnect import Reconnect
        from fedzo.edge.agent.waits import WaitNotes
        agent_tcp._serve(ours, endpoint, Breaks(**QUIET), Reconnect(60.0, "here", QUIET["log"]),
                         WaitNotes(QUIET["log"]), 900.0, [])   # returns: the loop reconnects
    assert endpoint.sent[-1].code == ErrorCode.BAD_MESSAGE
    assert endpoint.counters.rejected[REFUSED_REASON] == 1
    with pytest.raises(MessageRefused):
        take(Breaks(**QUIET), ModelDownload(0, 1, 0, b"\0" * 4), LinkCounters("b"))


def test_running_out_of_memory_is_not_taken_for_a_bad_message():
    class OutOfMemory(AgentRuntime):
        def handle(self, msg):
            raise MemoryError()

    with pytest.raises(MemoryError):                  # the board's loop reports it and exits
        take(OutOfMemory(**QUIET), ModelDownload(0, 1, 0, b"\0" * 4), LinkCounters("a"))
