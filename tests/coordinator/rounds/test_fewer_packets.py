"""Fewer packets per round (issue 15, item 5; protocol 4): a steady round is one message down
(the result that also starts the next round, one object for every agent) and one write up;
a merged message that is malformed or out of order gets an error and a counter."""
import socket

import pytest
from protocol_strategies import established_pair
from serving import serve_with_agents
from small_runs import Harness, small_config

from fedzo.coordinator.run.lifecycle import Run
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.links.tcpinfo import tcp_header_figures
from fedzo.edge.protocol import (
    Error,
    ErrorCode,
    RoundResult,
    RoundResultNext,
    RoundStart,
    TruncatedFrame,
    UnexpectedMessage,
)
from fedzo.edge.protocol.header import pack_header

QUIET = dict(log=lambda *a: None)


def _spy(h):
    """Record every (link, message) the coordinator hands to the Harness's links."""
    sent, dispatch = [], h.dispatch

    def spy(outputs):
        outputs = list(outputs)
        sent.extend(outputs)
        dispatch(outputs)
    h.dispatch = spy
    return sent


def test_a_steady_round_is_one_shared_message_down_and_one_vote_up(tmp_path):
    rounds = 4
    h = Harness(tmp_path, agents=3, rounds=rounds)
    sent = _spy(h)
    for _ in range(3):
        h.connect(AgentRuntime(**QUIET))
    h.finish()
    starts = [m for _, m in sent if isinstance(m, RoundStart)]
    assert [m.round for m in starts] == [0, 0, 0]          # only the first round has its own start
    for r in range(rounds - 1):
        merged = [(link, m) for link, m in sent if isinstance(m, RoundResultNext) and m.round == r]
        assert sorted(link.index for link, _ in merged) == [0, 1, 2]
        assert len({id(m) for _, m in merged}) == 1        # one object (one encoded body) for all
    last = [m for _, m in sent if type(m) is RoundResult]
    assert [m.round for m in last] == [rounds - 1] * 3 and len({id(m) for m in last}) == 1
    for link in h.links:
        for r in range(1, rounds - 1):                     # steady rounds
            stats = link.coordinator_end.counters.round_stats(r)
            assert stats["down"]["messages"] == 1 and stats["up"]["messages"] == 1
    for agent in h.agents:                                 # the demo's guarantee: same bits everywhere
        assert agent.logic.digest() == h.run.store.digest() and agent.out_of_order == 0


def test_a_merged_message_out_of_order_is_answered_with_an_error_and_counted(tmp_path):
    h = Harness(tmp_path, agents=2, rounds=5)
    for _ in range(2):
        h.connect(AgentRuntime(**QUIET))
    h.step_all()                                           # round 0 closes; round 1 is open
    agent = h.agents[0]
    held, voted = agent.round, agent.voted
    # A result for a round this replica is not at: it cannot apply it nor vote in the next.
    replies = agent.handle(RoundResultNext(held + 2, (1, -1), h.run.store.digest()))
    assert [type(r) for r in replies] == [Error] and replies[0].code == ErrorCode.DIVERGED
    assert agent.out_of_order == 1 and agent.round == held and agent.voted == voted
    # The coordinator takes the Error as a request for theta (a Sync), and the run goes on.
    h.deliver_up(h.links[0], h.links[0].agent_end.send(replies[0]))
    h.finish()
    assert all(a.logic.digest() == h.run.store.digest() for a in h.agents)


def _forge(session, type_code, body):
    """A frame tagged under the sender's real session key, with any body (tests only)."""
    header = pack_header(type_code, 0, session.send_seq)
    session.send_seq += 1
    return header + body + session._stx.tag(header, body)


def test_a_malformed_merged_message_is_rejected_and_counted():
    agent, coord = established_pair()
    good = RoundResultNext(3, (1, 0, -1, 1, 1), bytes(8)).encode_body()
    with pytest.raises(TruncatedFrame):
        agent.open(_forge(coord, RoundResultNext.TYPE, good[:-1]))       # a vote byte short
    assert agent.rejections["truncated"] == 1
    with pytest.raises(UnexpectedMessage):                               # only a coordinator sends it
        coord.open(_forge(agent, RoundResultNext.TYPE, good))
    assert coord.rejections["unexpected"] == 1
    assert agent.open(_forge(coord, RoundResultNext.TYPE, good)) == RoundResultNext(3, (1, 0, -1, 1, 1), bytes(8))


class CountingSocket(socket.socket):
    """An agent's socket that counts its writes and keeps the kernel's counts at close."""

    all = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.writes, self.figures = [], {}
        CountingSocket.all.append(self)

    def sendall(self, data, *args):
        self.writes.append(len(data))
        return super().sendall(data, *args)

    def close(self):
        if self.fileno() >= 0:
            self.figures = tcp_header_figures(self)
        super().close()


@pytest.mark.parametrize("algo", ["par-s2zpo", "fedavg-s2zpo"])
def test_an_agent_answers_each_round_in_one_write_and_one_segment(tmp_path, monkeypatch, algo):
    real = socket.create_connection
    CountingSocket.all = []

    def counting(*args, **kwargs):
        sock = real(*args, **kwargs)
        return CountingSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    monkeypatch.setattr(socket, "create_connection", counting)
    rounds = 4
    run = Run(small_config(agents=2, rounds=rounds, algo=algo), tmp_path / "run", **QUIET)
    agents = [AgentRuntime(**QUIET) for _ in range(2)]
    server, errors = serve_with_agents(run, agents)
    assert not errors and run.runtime.done
    assert len(CountingSocket.all) == 2                     # one connection each, no rejoin
    for sock in CountingSocket.all:
        # Hello, Join, one write per round (FedAvg: its model chunks and the vote together), Report.
        assert len(sock.writes) == 2 + rounds + 1
        if algo == "fedavg-s2zpo":
            assert all(w > 4 * run.store.d for w in sock.writes[2:2 + rounds])
        else:
            assert sock.writes[2:2 + rounds] == [4 + 36] * rounds      # a vote frame with its prefix
            if "data_segments_out" in sock.figures:
                # The kernel's own count: each write went out as one segment.
                assert sock.figures["data_segments_out"] == len(sock.writes)
    for link in server.links:
        for r in range(1, rounds - 1):                      # steady rounds, at the coordinator
            stats = link.counters.round_stats(r)
            if algo == "par-s2zpo":
                assert stats["down"]["messages"] == stats["up"]["messages"] == 1
            else:                                           # the chunks each way, then result / vote
                assert stats["down"]["messages"] == stats["up"]["messages"] >= 2
    assert all(a.logic.digest() == run.store.digest() for a in agents)


def test_in_a_sampled_fleet_only_the_asked_agents_get_the_result_that_starts_the_round(tmp_path):
    rounds = 4
    h = Harness(tmp_path, agents=4, blocks=2, per_round=2, rounds=rounds)
    sent = _spy(h)
    for _ in range(4):
        h.connect(AgentRuntime(**QUIET))
    h.finish()
    for r in range(rounds - 1):
        asked = {k for k in range(4) if h.runtime.plan(r + 1).asked(k)}
        merged = {link.index for link, m in sent if isinstance(m, RoundResultNext) and m.round == r}
        plain = {link.index for link, m in sent if type(m) is RoundResult and m.round == r}
        # Each agent gets round r's result once: merged with round r + 1's start if it is asked then.
        assert merged == asked and plain == set(range(4)) - asked
    for agent in h.agents:
        assert agent.logic.digest() == h.run.store.digest() and agent.out_of_order == 0
