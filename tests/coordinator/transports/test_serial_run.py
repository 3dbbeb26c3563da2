"""Runs over paced pseudo-terminal serial lines: noise, cut cables, rebooting boards, TCP alongside.

Agents run in threads of this process (run_agent_serial / run_agent_tcp with
an AgentRuntime); the coordinator is the real Server. Subprocess boards are
in test_firmware_sim.py.
"""
import json
import threading

import numpy as np
from arq_forger import Forger
from small_runs import KEY, run_small, small_config
from waiting import PATIENCE

from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.server import SerialSession, Server, TcpLink
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.agent.serial import run_agent_serial
from fedzo.edge.agent.tcp import run_agent_tcp
from fedzo.edge.protocol import starts_round
from fedzo.firmware_sim.faults import FaultSpec
from fedzo.firmware_sim.line import SerialLine

QUIET = dict(log=lambda *a: None)
BAUD = 115200
# No round here is meant to close at its deadline: a healthy agent, however
# loaded the machine, always answers before it.
ROUND_TIMEOUT = 10 * PATIENCE


class AgentThread(threading.Thread):
    """One agent in a thread; keeps its result or its exception."""

    def __init__(self, fn, runtime):
        super().__init__(daemon=True)
        self.fn, self.runtime = fn, runtime
        self.result = self.error = None

    def run(self):
        try:
            self.result = self.fn(self.runtime)
        except BaseException as exc:   # surfaced by the test (PowerCut is not an Exception)
            self.error = exc


def serial_agent(line, runtime, **options):
    options = {"baud": BAUD, "reconnect_seconds": PATIENCE, **QUIET, **options}
    thread = AgentThread(lambda rt: run_agent_serial(line.agent_port, KEY, rt, **options), runtime)
    thread.start()
    return thread


def serve(server, **kwargs):
    server.serve(stop_after=2 * PATIENCE, **kwargs)


def join_all(threads):
    for t in threads:
        t.join(PATIENCE)
    assert not any(t.is_alive() for t in threads), "an agent did not finish"


def test_one_percent_byte_errors_no_wrong_vote_identical_replicas_and_tcp_alongside(tmp_path):
    """K = 3: agent 0 on TCP, agents 1 and 2 on serial lines where 1 % of the bytes are hit."""
    # 1 % of bytes dropped or flipped, plus bursts of line noise (random bytes, some 0x00).
    faults = FaultSpec.parse("drop=0.005,flip=0.005,burst=0.0005,burst_len=6,seed=11")
    assert faults.byte_error_rate >= 0.01
    config = small_config(agents=3, rounds=3)
    _, _, reference = run_small(tmp_path, "reference", agents=3, rounds=3)
    lines = [SerialLine(BAUD, faults, index=k).start() for k in (1, 2)]
    try:
        run = Run(config, tmp_path / "noisy", round_timeout=ROUND_TIMEOUT, **QUIET)
        server = Server(run, KEY, listen=("127.0.0.1", 0), serial=[l.coordinator_port for l in lines],
                        baud=BAUD, fragment=48, **QUIET)
        runtimes = [AgentRuntime(agent_id=k, **QUIET) for k in range(3)]
        tcp = AgentThread(lambda rt: run_agent_tcp(server.address, KEY, rt, **QUIET), runtimes[0])
        tcp.start()
        threads = [tcp] + [serial_agent(line, rt, fragment=48) for line, rt in zip(lines, runtimes[1:])]
        serve(server)
        summary = run.finish()
        join_all(threads)
        line_stats = [line.stats() for line in lines]
    finally:
        for line in lines:
            line.close()
    assert all(t.error is None for t in threads), [t.error for t in threads]
    # No wrong vote was applied: the votes and theta are those of the clean in-process run.
    votes = [m["votes"] for m in run.folder.metrics()]
    expected = [json.loads(l)["votes"] for l in (tmp_path / "reference" / "metrics.jsonl").read_text().splitlines()]
    assert votes == expected
    assert summary["theta_hash"] == reference["theta_hash"]
    for rt in runtimes:                                   # every replica holds the coordinator's theta
        np.testing.assert_array_equal(rt.logic.store.values, run.store.values)
        assert rt.logic.digest().hex() == summary["theta_hash"]
    per_agent = summary["per_agent"]
    assert [a["transport"] for a in per_agent] == ["tcp", "serial", "serial"]
    assert all(a["discarded_votes"] == 0 and a["joins"] == 1 for a in per_agent)
    # The noise was real, was caught by the CRC (or the session) and cost retransmissions.
    hit = sum(s[d]["dropped"] + s[d]["flipped"] + s[d]["burst_bytes"] for s in line_stats for d in ("up", "down"))
    carried = sum(s[d]["bytes_in"] for s in line_stats for d in ("up", "down"))
    assert hit >= 0.008 * carried and hit > 10
    agent_side = sum(t.result.counters.rejected_total for t in threads[1:])
    coordinator_side = sum(a["rejected_frames"] for a in per_agent[1:])
    assert agent_side + coordinator_side > 0
    assert sum(a["retransmissions"] for a in per_agent[1:]) + sum(t.result.arq["retransmitted"]
                                                                  for t in threads[1:]) > 0
    assert all(a["wire_seconds_down"] > 0 and a["baud"] == BAUD for a in per_agent[1:])


def test_cut_cables_end_the_sessions_and_the_boards_come_back_resynced(tmp_path):
    """Both cables are cut after round 0 until each link has been given up at one end;
    the run waits, then goes on.

    Which end gives up depends on timing: the side with an unacknowledged
    packet does. If the coordinator's round start was acknowledged just
    before the cut, only the agent (whose vote goes unacknowledged) notices,
    so the test waits for either end's give-up, seen in the coordinator's
    sessions or in the agent's log."""
    config = small_config(agents=2, rounds=5)
    link_timeout = 5.0               # the thing under test, and far above any stall of a healthy link
    lines = [SerialLine(BAUD, index=k).start() for k in range(2)]
    try:
        run = Run(config, tmp_path / "cut", round_timeout=ROUND_TIMEOUT, **QUIET)
        server = Server(run, KEY, listen=None, serial=[l.coordinator_port for l in lines], baud=BAUD,
                        link_timeout=link_timeout, **QUIET)
        closed = run.runtime.on_round_closed

        def on_closed(info):
            closed(info)
            if info["round"] == 0:
                for line in lines:
                    line.disconnect(10 * PATIENCE)      # until check() plugs it back in

        agent_lost = [threading.Event() for _ in lines]

        def agent_log(k):
            def log(*parts):
                if "serial link lost" in " ".join(str(p) for p in parts):
                    agent_lost[k].set()
            return log

        def given_up(k):
            port = server.ports[k]
            return agent_lost[k].is_set() or any(session.link_failed for session in port.sessions)

        def check():                                    # every pass of the server loop
            if all(line.cut for line in lines) and all(given_up(k) for k in range(len(lines))):
                for line in lines:
                    line.reconnect()
            rejoined()

        run.runtime.on_round_closed = on_closed
        runtimes = [AgentRuntime(agent_id=k, **QUIET) for k in range(2)]
        # Once running, one agent is enough for a round to go on, and rounds are quick: the first
        # board back waits at its round starts until the other has joined again (an event, with a
        # limit), so the last round is one both boards are back for, however slow the second is.
        both_back = threading.Event()
        for rt in runtimes:
            start_round = rt._on_round_start

            def waiting_start(msg, start_round=start_round):
                if msg.round > 1 and not both_back.wait(PATIENCE):
                    raise AssertionError("the other board did not join again")
                return start_round(msg)
            rt._on_round_start = waiting_start

        def rejoined():
            if all(slot.joins == 2 for slot in run.runtime.slots):
                both_back.set()
        threads = [serial_agent(line, rt, link_timeout=link_timeout, log=agent_log(k))
                   for k, (line, rt) in enumerate(zip(lines, runtimes))]
        serve(server, check=check)
        summary = run.finish()
        join_all(threads)
    finally:
        for line in lines:
            line.close()
    assert all(t.error is None for t in threads), [t.error for t in threads]
    assert all(line.cuts == 1 for line in lines)
    metrics = run.folder.metrics()
    assert metrics[1]["voters"] < 2                     # a round ran (or closed) without them
    assert metrics[-1]["voters"] == 2                   # both back for the last round
    for slot in run.runtime.slots:
        assert slot.joins == 2 and slot.syncs + slot.catch_ups >= 1   # rejoined, brought up to date
    for rt in runtimes:
        assert rt.logic.digest().hex() == summary["theta_hash"]
        assert rt.done
    coordinator_gave_up = sum(a["link_failures"] for a in summary["per_agent"])
    agents_gave_up = sum(t.result.link_failures for t in threads)
    assert coordinator_gave_up + agents_gave_up >= 2      # each cut link was given up at one end at least
    # The summary says so whichever end gave up (a session the agent's new Hello ended counts
    # too), and the agents' work is all there: both reported after joining again.
    assert all(a["link_failures"] >= 1 for a in summary["per_agent"])
    assert summary["agents_reported"] == 2 and summary["env_steps"] > 0
    assert all(a["peak_rss_bytes"] for a in summary["per_agent"])
    assert all(t.result.sessions >= 2 for t in threads)


def test_forged_arq_packets_cost_no_vote_and_are_counted(tmp_path):
    """K = 2 over serial lines with a forger spliced into each (tests/arq_forger.py).

    Of the session frames' packets, both ways, the forger swallows one in
    three and forges its ACK, forges a RESET of the sender's numbering for
    the next, and a DATA packet with the next sequence number behind the
    third. Before the sealed ARQ, a forged ACK made its sender forget a
    swallowed vote or round start for good: the round waited for a vote
    that never came, and the run did not finish."""
    config = small_config(agents=2, rounds=3)
    _, _, reference = run_small(tmp_path, "reference", agents=2, rounds=3)
    lines = [SerialLine(BAUD, index=k).start() for k in range(2)]
    forgers = []
    for k, line in enumerate(lines):
        forgers.append(Forger(line, drop=lambda direction, seq: seq % 3 == 0,
                              reset=lambda direction, seq: seq % 3 == 1,
                              data=lambda direction, seq: seq % 3 == 2, seed=k))
        line.tamper = forgers[-1]
    try:
        run = Run(config, tmp_path / "forged", round_timeout=ROUND_TIMEOUT, **QUIET)
        server = Server(run, KEY, listen=None, serial=[l.coordinator_port for l in lines], baud=BAUD, **QUIET)
        runtimes = [AgentRuntime(agent_id=k, **QUIET) for k in range(2)]
        threads = [serial_agent(line, rt) for line, rt in zip(lines, runtimes)]
        serve(server)
        summary = run.finish()
        join_all(threads)
    finally:
        for line in lines:
            line.close()
    assert all(t.error is None for t in threads), [t.error for t in threads]
    votes = [m["votes"] for m in run.folder.metrics()]
    expected = [json.loads(l)["votes"] for l in (tmp_path / "reference" / "metrics.jsonl").read_text().splitlines()]
    assert votes == expected                              # no vote went missing
    assert summary["theta_hash"] == reference["theta_hash"]
    for rt in runtimes:
        assert rt.logic.digest().hex() == summary["theta_hash"]
    assert all(a["joins"] == 1 and a["link_failures"] == 0 for a in summary["per_agent"])
    # The attack happened, both ways, and each end counted the forgeries it was sent.
    assert all(f.swallowed["up"] and f.swallowed["down"] for f in forgers)
    assert all(a["forged_packets"] > 0 for a in summary["per_agent"])
    assert all(t.result.arq["forged"] > 0 for t in threads)


class PowerCut(BaseException):
    """The board loses power: not an Exception, so the agent's message boundary
    (edge/agent/boundary.py) does not take it for a bad message; the loop dies."""


class FailingRuntime(AgentRuntime):
    """An agent whose board loses power when round `at` starts."""

    def __init__(self, at, **kwargs):
        super().__init__(**kwargs)
        self.at = at

    def handle(self, msg):
        if starts_round(msg) == self.at:
            raise PowerCut("board lost power")
        return super().handle(msg)


def test_a_board_that_reboots_on_its_port_is_resynced_in_the_open_round(tmp_path):
    config = small_config(agents=2, rounds=4)
    lines = [SerialLine(BAUD, index=k).start() for k in range(2)]
    try:
        run = Run(config, tmp_path / "reboot", round_timeout=ROUND_TIMEOUT, **QUIET)
        server = Server(run, KEY, listen=None, serial=[l.coordinator_port for l in lines], baud=BAUD, **QUIET)
        steady = AgentRuntime(agent_id=0, **QUIET)
        failing = FailingRuntime(2, agent_id=1, **QUIET)
        threads = [serial_agent(lines[0], steady), serial_agent(lines[1], failing)]
        reborn = AgentRuntime(agent_id=1, **QUIET)       # the same board after the reboot: no state

        def check():
            if threads[1].error is not None and len(threads) == 2:
                threads.append(serial_agent(lines[1], reborn))

        serve(server, check=check)
        summary = run.finish()
        join_all(threads)
    finally:
        for line in lines:
            line.close()
    assert isinstance(threads[1].error, PowerCut)
    assert threads[0].error is None and threads[2].error is None
    port = server.ports[1]
    joined = [s for s in port.sessions if s.joined]
    assert len(joined) == 2 and all(isinstance(s, SerialSession) for s in joined)
    slot = run.runtime.slots[1]
    assert slot.joins == 2 and slot.syncs == 1
    assert run.folder.metrics()[2]["voters"] == 2      # the reborn agent voted in the open round
    assert reborn.logic.digest().hex() == steady.logic.digest().hex() == summary["theta_hash"]
    assert summary["per_agent"][1]["joins"] == 2
    # The reboot cost agent 1 its session, and the summary's "lost" says so (before: 0, since
    # the agent's new Hello, not the coordinator's ARQ, ended it).
    assert [a["link_failures"] for a in summary["per_agent"]] == [0, 1]
    assert not any(isinstance(l, TcpLink) for l in server.links)
