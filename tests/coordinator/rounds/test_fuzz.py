"""Fuzzing a running coordinator with authenticated but malformed messages (issue 11, item 8).

Bounded by message count, not by time: the generators are seeded, so a run
sends the same messages every time. The run must finish every round, and
the replicas of the honest agents must hold the coordinator's theta bit for bit.
"""
import itertools

import numpy as np
import pytest
from fuzz_messages import AGENT_KINDS, EVERY_KIND, malformed
from serving import serve_with_agents
from small_runs import Harness, small_config
from waiting import PATIENCE

from fedzo.coordinator.rounds.boundary import deliver
from fedzo.coordinator.run.lifecycle import Run
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.protocol import MESSAGE_TYPES, Challenge, ProtocolError

QUIET = dict(log=lambda *a: None)
TCP_BUDGET = 400          # malformed messages the fuzzing agent sends over TCP
RUNTIME_BUDGET = 600      # malformed messages delivered straight to the runtime


class FuzzingAgent(AgentRuntime):
    """An agent holding the run key that answers every message with a few malformed
    ones (every agent-sent type in turn) before its honest replies, `budget` in all."""

    def __init__(self, budget, seed, per_message=4, **kwargs):
        super().__init__(**kwargs)
        self.budget, self.sent, self.per_message = budget, 0, per_message
        self.rng = np.random.default_rng(seed)
        self.kinds = itertools.cycle(AGENT_KINDS)

    def handle(self, msg):
        honest = super().handle(msg)
        if self.logic is None or self.done or isinstance(msg, Challenge):
            # Before the Welcome nothing but the Join can be sealed: fuzz would end the
            # attempt unsent, and failed attempts back off (edge/agent/reconnect.py).
            return honest
        n = min(self.per_message, self.budget - self.sent)
        self.sent += n
        d, digest = self.logic.store.d, self.logic.digest()
        fuzz = [malformed(self.rng, next(self.kinds), d, self.round or 0, digest) for _ in range(n)]
        return fuzz + honest


@pytest.mark.parametrize("algo", ["par-s2zpo", "fedavg-s2zpo"])
def test_a_fuzzing_insider_over_tcp_cannot_stop_the_run_or_split_the_replicas(tmp_path, algo):
    run = Run(small_config(agents=3, rounds=4, algo=algo), tmp_path / "run", round_timeout=PATIENCE, **QUIET)
    honest = [AgentRuntime(agent_id=k, **QUIET) for k in range(2)]
    fuzzer = FuzzingAgent(TCP_BUDGET, seed=11, agent_id=2, **QUIET)
    server, errors = serve_with_agents(run, honest + [fuzzer])
    assert not errors
    assert run.runtime.done and run.runtime.round == 4
    assert fuzzer.sent >= 32        # 4 for each of at least 8 messages to it (bounded by TCP_BUDGET)
    refused = sum(sum(l.counters.rejected.values()) for l in server.links) + sum(run.runtime.rejected.values())
    assert refused > 0
    for agent in honest:
        np.testing.assert_array_equal(agent.logic.store.values, run.store.values)


def test_malformed_messages_of_every_type_into_the_runtime_leave_the_run_whole(tmp_path):
    h = Harness(tmp_path, agents=2, rounds=4)

    def dispatch(outputs):              # as the server does: a message a session cannot seal is dropped
        for link, msg in outputs:
            if msg is None:
                link.closed = True
            elif not link.closed:
                try:
                    link.to_agent.append(link.coordinator_end.send(msg))
                except ProtocolError:
                    pass
        h.runtime.after_dispatch()

    h.dispatch = dispatch
    honest = h.connect(AgentRuntime(agent_id=0, **QUIET))
    target = h.connect(AgentRuntime(agent_id=1, **QUIET))
    rng = np.random.default_rng(5)
    kinds = itertools.cycle(EVERY_KIND)
    seen = set()
    for i in range(RUNTIME_BUDGET):
        if h.runtime.done:
            break
        if target.closed:               # refused and closed: the agent comes back
            target = h.connect(AgentRuntime(agent_id=1, **QUIET))
        kind = next(kinds)
        msg = malformed(rng, kind, h.run.store.d, h.runtime.round, h.run.store.digest())
        if kind.NAME == "join" and msg.agent_id == 0:
            continue                    # taking over another agent's id is the session's business
        seen.add(kind)
        dispatch(deliver(h.runtime, target, msg, **QUIET))
        if i % 25 == 24:
            h.step_all()                # the honest agents work: rounds go on
    assert seen == set(EVERY_KIND) == set(MESSAGE_TYPES.values())    # every type of the protocol
    h.finish()
    assert h.runtime.done and h.runtime.round == 4
    assert h.runtime.rejected["bad_input"] > 0
    assert h.agents[0].round == 4 and h.links[0] is honest
    np.testing.assert_array_equal(h.agents[0].logic.store.values, h.run.store.values)
