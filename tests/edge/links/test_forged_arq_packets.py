"""Forged ARQ packets on a real (paced pseudo-terminal) serial line (issue 11, item 5).

An agent's and a coordinator's SerialEndpoint talk over a SerialLine with a
Forger spliced into it (tests/arq_forger.py). After the handshake, the
forger attacks the coordinator's session frames. Before the fix, its
forged ACK made the coordinator forget a RoundStart the line had lost (it
never arrived), its forged RESET renumbered the stream, and its forged DATA
was delivered to the agent's session, which rejected it as a bad frame.
"""
import time

import pytest
from arq_forger import Forger, always
from waiting import wait_until

from fedzo.edge.links.serial_link import PortIO, SerialEndpoint, make_arq
from fedzo.edge.protocol import (
    AGENT,
    COORDINATOR,
    Bye,
    ByeReason,
    Challenge,
    Hello,
    Join,
    LinkCounters,
    RoundStart,
    Session,
    Vote,
    Welcome,
)
from fedzo.edge.protocol.arq import ACK, DATA, RESET
from fedzo.firmware_sim.line import SerialLine

BAUD = 115200
KEY = bytes.fromhex("9e3c1a7f52d8b4e60f2a9c7d1e5b3f8a6c4d2e0f9b7a5c3e1d8f6b4a2c0e9d7b")
H = bytes(8)


class Ends:
    """Both ends of the line, driven from the test's thread."""

    def __init__(self, line):
        self.agent = SerialEndpoint(Session(AGENT, KEY, counters=LinkCounters("a")), make_arq(BAUD))
        self.coord = SerialEndpoint(Session(COORDINATOR, KEY, counters=LinkCounters("c")), make_arq(BAUD))
        self._io = [(self.agent, PortIO(line.agent_port, BAUD), bytearray(), []),
                    (self.coord, PortIO(line.coordinator_port, BAUD), bytearray(), [])]

    @property
    def at_agent(self) -> list:
        return self._io[0][3]

    @property
    def at_coord(self) -> list:
        return self._io[1][3]

    def restart_agent(self) -> None:
        """The agent starts a new session as its loop does: a new endpoint and line
        state on the same port, with the same Session (it keeps the rejoin secret)."""
        old, port, outbox, got = self._io[0]
        self.agent = SerialEndpoint(old.session, make_arq(BAUD))
        self._io[0] = (self.agent, port, outbox, got)

    def step(self) -> None:
        for end, port, outbox, got in self._io:
            end.tick(time.monotonic())
            outbox += end.output()
            del outbox[:port.write(outbox)]
            got.extend(end.feed(port.read(), time.monotonic()))

    def until(self, condition, what: str) -> None:
        def poll():
            self.step()
            return condition()
        wait_until(poll, what)

    def handshake(self) -> None:
        self.at_agent.clear()
        self.at_coord.clear()
        self.agent.send(Hello(), time.monotonic())
        self.until(lambda: self.at_coord, "the hello")
        self.coord.send(Challenge(), time.monotonic())
        self.until(lambda: self.at_agent, "the challenge")
        self.agent.send(Join(agent_id=0), time.monotonic())
        self.until(lambda: len(self.at_coord) == 2, "the join")
        self.coord.send(Welcome(0, 0, 1, 10, 1, 0, H, "{}"), time.monotonic())
        self.until(lambda: self.agent.session.established, "the welcome")
        self.until(lambda: self.agent.idle and self.coord.idle, "the handshake to be acknowledged")
        self.at_agent.clear()
        self.at_coord.clear()

    def close(self) -> None:
        for _, port, _, _ in self._io:
            port.close()


@pytest.fixture
def line():
    line = SerialLine(BAUD).start()
    yield line
    line.close()


def attacked(line, **attack):
    ends = Ends(line)
    ends.handshake()
    forger = Forger(line, directions=("down",), **attack)
    line.tamper = forger
    return ends, forger


def test_a_forged_ack_for_a_swallowed_packet_does_not_make_it_vanish(line):
    ends, forger = attacked(line, drop=always)
    try:
        ends.coord.send(RoundStart(7), time.monotonic())
        # Before: the coordinator took the forged ACK, forgot the packet, and this waited in vain.
        ends.until(lambda: ends.at_agent and ends.coord.idle, "the round start despite the forged ack")
    finally:
        ends.close()
    assert ends.at_agent == [RoundStart(7)]
    assert forger.swallowed["down"] == 1 and forger.forged[ACK, "up"] == 1
    assert ends.coord.arq.stats["forged"] == 1                 # the sealed forgery, counted
    assert ends.coord.arq.stats["retransmitted"] >= 1
    assert ends.coord.counters.rejected.get("forged") == 1


def test_a_forged_reset_does_not_renumber_the_stream(line):
    ends, forger = attacked(line, reset=always)
    try:
        ends.coord.send(RoundStart(7), time.monotonic())
        # The forged RESET went up as the round start went down, ahead of the agent's ACK.
        ends.until(lambda: ends.at_agent and ends.coord.idle, "the round start")
    finally:
        ends.close()
    assert ends.at_agent == [RoundStart(7)] and forger.forged[RESET, "up"] == 1
    # Before: resets_received 1, a fresh epoch and the window sent again.
    assert ends.coord.arq.stats["resets_received"] == 0
    assert ends.coord.arq.stats["forged"] == 1


def test_a_forged_data_packet_is_not_delivered(line):
    ends, forger = attacked(line, data=always)
    try:
        for r in (7, 8):
            ends.coord.send(RoundStart(r), time.monotonic())
        ends.until(lambda: len(ends.at_agent) == 2 and ends.coord.idle
                   and ends.agent.counters.rejected_total >= forger.forged[DATA, "down"],
                   "both round starts and the forged packets")
    finally:
        ends.close()
    assert ends.at_agent == [RoundStart(7), RoundStart(8)]
    assert forger.forged[DATA, "down"] == 2
    # Before: each forgery was delivered, and the session rejected it as a bad frame.
    assert {reason for reason, n in ends.agent.counters.rejected.items() if n} == {"forged"}
    assert ends.agent.arq.stats["forged"] == 2 and ends.agent.arq.stats["conflicts"] == 0


def test_after_a_bye_replaced_the_agent_joins_again_on_the_same_line_under_new_keys(line):
    ends = Ends(line)
    try:
        ends.handshake()
        old_keys = ends.coord.arq.keys
        ends.coord.send(Bye(ByeReason.REPLACED, "join again"), time.monotonic())
        ends.until(lambda: ends.at_agent and ends.coord.idle, "the bye")
        # The coordinator's port goes on with a fresh session; the agent joins again.
        ends.coord.rebind(Session(COORDINATOR, KEY, counters=LinkCounters("c2")))
        ends.restart_agent()
        ends.handshake()
        assert ends.coord.arq.keys not in (None, old_keys) and ends.agent.arq.keys == ends.coord.arq.keys[::-1]
        line.tamper = Forger(line, drop=always)       # and the new sealed channel holds
        ends.coord.send(RoundStart(3), time.monotonic())
        ends.agent.send(Vote(3, 1, H), time.monotonic())
        ends.until(lambda: ends.at_agent and ends.at_coord and ends.coord.idle and ends.agent.idle,
                   "a round start and a vote in the new session")
    finally:
        ends.close()
    assert ends.at_agent == [RoundStart(3)] and ends.at_coord == [Vote(3, 1, H)]
    assert ends.coord.arq.stats["forged"] >= 1 and ends.agent.arq.stats["forged"] >= 1


def test_a_new_handshake_drops_a_sealed_stream_the_agent_can_no_longer_acknowledge(line):
    ends = Ends(line)
    try:
        ends.handshake()
        ends.coord.send(RoundStart(4), time.monotonic())
        ends.restart_agent()            # the agent started over before that arrived
        ends.coord.rebind(Session(COORDINATOR, KEY, counters=LinkCounters("c2")))
        ends.until(lambda: ends.agent.arq.stats["unkeyed"] >= 1, "the stale round start at the new agent")
        assert ends.coord.arq.sealed.queued == 1   # nobody can acknowledge it now
        ends.agent.send(Hello(), time.monotonic())
        ends.until(lambda: ends.at_coord, "the new hello")
        ends.coord.peer_started_over()             # what the server does on that Hello
        ends.until(lambda: ends.coord.idle, "the coordinator's line to drain")
    finally:
        ends.close()
    assert ends.coord.arq.keys is None and ends.at_agent == []
