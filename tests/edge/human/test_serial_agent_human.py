"""`fedzo agent --serial ... --human`: a serial agent whose person is slow keeps its link.

A coordinator process and an agent process talk over a paced pseudo-terminal
line (firmware_sim/line.py) held by this test; a scripted person answers at
the agent's page over HTTP, but only once an event on the line has shown
that the link needed service while the agent waited for the person, and the
link timeout has passed since. Before the agent pumped its line while
waiting (edge/agent/line_pump.py), the coordinator gave the link up in both
tests: the summary showed a lost link and the agent a second session.
The last test runs in-process: the agent's own silence limit.
"""
import json
import struct
import threading
import time

from arq_forger import whole_packets
from fedzo.coordinator.tools.page_client import answer_until_exit, page_url, start_fedzo as start_command
from people import human_sources
from serving import serve_in_thread
from small_runs import KEY, small_config
from waiting import PATIENCE, wait_until

from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.server import Server
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.agent.serial import run_agent_serial
from fedzo.edge.agent.tcp import run_agent_tcp
from fedzo.edge.learning.algorithm import agent_vote
from fedzo.edge.links.serial_link import FIRST
from fedzo.edge.protocol import RoundResultNext, RoundStart
from fedzo.edge.protocol.arq import ACK, ARQ_HEADER_BYTES, DATA, SEALED
from fedzo.edge.protocol.errors import ProtocolError
from fedzo.edge.protocol.serialframe import serial_decode
from fedzo.firmware_sim.line import SerialLine

BAUD = 115200
LINK_TIMEOUT = 2.0          # both ends: short, so the test outlasts it quickly
SEED = 4
RUN = ["--agents", "1", "--rounds", "2", "--batch", "1", "--horizon", "50", "--eval-every", "0",
       "--eval-episodes", "1", "--seed", str(SEED)]
_HEAD = struct.Struct(">BHH")
_TYPE_AT = ARQ_HEADER_BYTES + 2      # the fragment's flags byte, the frame's version, then its type


def answer_for(round_number: int) -> str:
    """The person's answer in each round (known in advance, so the votes can be checked)."""
    return ("left", "right", "tie")[round_number % 3]


_STARTS = (RoundStart.TYPE, RoundResultNext.TYPE)    # frames that start a round (protocol 4)


class RoundStartTap:
    """A SerialLine tamper hook that watches the coordinator's round starts.

    It reads packet headers and the frame type, as anyone on the wire can. With
    `lose_acks`, it also loses, as a noisy line may, the agent's
    acknowledgements on the session's stream from the moment a round start
    goes down until the coordinator sends that round start again: that
    retransmission needs an acknowledgement from an agent that is already
    waiting for its person.
    """

    def __init__(self, lose_acks: bool):
        self.lose_acks = lose_acks
        self._buffers = {"up": bytearray(), "down": bytearray()}
        self._packets = []           # (epoch, seq) of each round start, in the order sent
        self.sent = []               # when each round start first went down
        self.lost_at = {}            # round -> when the first acknowledgement of it was lost
        self.resent = {}             # round -> when the coordinator sent it again after that
        self._losing = None          # the round whose acknowledgements are being lost

    def __call__(self, direction: str, data: bytes) -> bytes:
        look = self._down if direction == "down" else self._up
        return b"".join(look(wire) for wire in whole_packets(self._buffers[direction], data))

    def _down(self, wire: bytes) -> bytes:
        packet = _decode(wire)
        if packet is None or packet[0] & ~SEALED != DATA or len(packet) <= _TYPE_AT:
            return wire
        key = _HEAD.unpack_from(packet)[1:]
        if key in self._packets:                       # sent again
            r = self._packets.index(key)
            if r == self._losing and r in self.lost_at:
                self.resent[r] = time.monotonic()
                self._losing = None
        elif packet[ARQ_HEADER_BYTES] & FIRST and packet[_TYPE_AT] in _STARTS:
            self._packets.append(key)
            self.sent.append(time.monotonic())
            if self.lose_acks:
                self._losing = len(self._packets) - 1
        return wire

    def _up(self, wire: bytes) -> bytes:
        packet = _decode(wire)
        if self._losing is None or packet is None or packet[0] != ACK | SEALED:
            return wire
        self.lost_at.setdefault(self._losing, time.monotonic())
        return b""


def _decode(wire: bytes):
    try:
        return serial_decode(wire)
    except ProtocolError:
        return None


def clock_passes(when: float, what: str) -> None:
    """Wait until time.monotonic() reaches `when` (the person looks at a clock)."""
    wait_until(lambda: time.monotonic() >= when, what, interval=0.05)


def serial_human_run(tmp_path, tap, ready, round_timeout):
    """A coordinator and a `--human` agent on one serial line with `tap` spliced in; the
    person answers when ready(round) returns. (summary, agent stats, answers records,
    metrics, agent's output)."""
    out, answers, stats = tmp_path / "run", tmp_path / "answers.jsonl", tmp_path / "agent-stats.json"
    with SerialLine(BAUD) as line:
        line.tamper = tap
        coordinator, clines = start_command(
            "coordinator", "--serial", line.coordinator_port, "--baud", str(BAUD), "--link-timeout",
            str(LINK_TIMEOUT), "--round-timeout", str(round_timeout), "--out", str(out),
            "--preference", "human", *RUN)
        wait_until(lambda: (out / "run.key").is_file() or coordinator.poll() is not None, "the run key")
        agent, alines = start_command(
            "agent", "--serial", line.agent_port, "--baud", str(BAUD), "--key-file", str(out / "run.key"),
            "--link-timeout", str(LINK_TIMEOUT), "--round-timeout", str(round_timeout),
            "--human", "127.0.0.1:0", "--answers", str(answers), "--stats-out", str(stats))
        try:
            url = wait_until(lambda: page_url(alines) or agent.poll() is not None and "exited", "the page's URL")
            assert url.startswith("http://"), "".join(alines)
            answer_until_exit(agent, url, lambda c: answer_for(c["round"]), ready=lambda c: ready(c["round"]))
            assert agent.returncode == 0, "".join(alines)
            assert coordinator.wait(PATIENCE) == 0, "".join(clines)
        finally:
            for process in (agent, coordinator):
                if process.poll() is None:
                    process.kill()
                    process.wait()
    summary = json.loads((out / "summary.json").read_text())
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    records = [json.loads(x) for x in answers.read_text().splitlines()]
    return summary, json.loads(stats.read_text()), records, metrics, "".join(alines)


def test_a_serial_agent_waiting_past_its_link_timeout_keeps_its_link_and_replays_to_the_same_theta(tmp_path):
    tap = RoundStartTap(lose_acks=True)

    def ready(r):
        # The acknowledgement of this round's start was lost and the coordinator sent it
        # again: only an agent that services its line while it waits can acknowledge it.
        wait_until(lambda: r in tap.resent, f"the coordinator to send round start {r} again")
        # ... and long enough for the coordinator's ARQ to give up on an agent that does not.
        clock_passes(tap.lost_at[r] + 2 * LINK_TIMEOUT, "twice the link timeout")

    summary, agent_stats, records, metrics, log = serial_human_run(tmp_path, tap, ready, round_timeout=PATIENCE)
    link = summary["per_agent"][0]
    assert (link["transport"], link["link_failures"], link["joins"]) == ("serial", 0, 1), log
    assert (agent_stats["sessions"], agent_stats["link_failures"]) == (1, 0), log
    assert sorted(tap.resent) == [0, 1]
    assert link["retransmissions"] >= 2                 # what the person's wait had to survive
    # Every answer counted in its round: the vote is the person's answer (a tie: the seed's bit).
    assert [(r["round"], r["answer"]) for r in records] == [(0, answer_for(0)), (1, answer_for(1))]
    assert [m["votes"] for m in metrics if "votes" in m] == [[agent_vote(r["outcome"], SEED, 0, r["round"])] for r in records]

    # The same answers replayed in-process give the same theta.
    replay = tmp_path / "replay"
    process, lines = start_command("simulate", "--replay", str(tmp_path / "answers.jsonl"), "--out", str(replay),
                                   "--quiet", *RUN)
    assert process.wait(PATIENCE) == 0, "".join(lines)
    assert json.loads((replay / "summary.json").read_text())["theta_hash"] == summary["theta_hash"]


def test_an_answer_after_the_round_closed_counts_zero_and_the_serial_agent_carries_on(tmp_path):
    """The round closes at its deadline while the person looks: the coordinator's round
    result and next round start reach an agent that is waiting, and must be acknowledged
    then and handled after the answer, in order."""
    tap = RoundStartTap(lose_acks=False)
    round_timeout = 8 * LINK_TIMEOUT       # round 1 must not close before its prompt answer

    def ready(r):
        if r == 0:
            wait_until(lambda: len(tap.sent) >= 2, "round 0 to close at its deadline (round start 1 sent)",
                       timeout=round_timeout + PATIENCE)
            clock_passes(tap.sent[1] + 2 * LINK_TIMEOUT, "twice the link timeout")

    summary, agent_stats, records, metrics, log = serial_human_run(tmp_path, tap, ready, round_timeout)
    link = summary["per_agent"][0]
    assert (link["link_failures"], link["joins"], link["syncs"]) == (0, 1, 0), log   # never resynced
    assert (agent_stats["sessions"], agent_stats["link_failures"]) == (1, 0), log
    assert [(r["round"], r["answer"]) for r in records] == [(0, answer_for(0)), (1, answer_for(1))]
    late, on_time = records
    assert [m["votes"] for m in metrics if "votes" in m] == [[0], [agent_vote(on_time["outcome"], SEED, 0, 1)]]
    assert "vote for round 0 not accepted" in log        # the late vote reached the coordinator
    assert summary["rounds"] == 2 and summary["agents_reported"] == 1


def test_a_person_slower_than_the_agent_s_silence_limit_does_not_make_it_join_again(tmp_path):
    """In-process: a serial agent (silence limit `silence`) and a TCP agent, each with its own
    person. The serial agent's person takes longer than that limit; the other person answers
    after the serial agent's vote is in, so the coordinator says nothing to it for a while.
    The silence limit counts from the vote, not from the round start: before, the agent
    took its own person's time for the coordinator's silence and joined again at once."""
    silence = 4.0
    quiet = dict(log=lambda *a: None)
    (desk_a, (source_a,)), (desk_b, (source_b,)) = (human_sources(1, tmp_path / f"answers-{k}.jsonl")
                                                    for k in "ab")
    logs = []
    with SerialLine(BAUD) as line:
        run = Run(small_config(preference="human", agents=2, rounds=1, horizon=50), tmp_path / "run",
                  round_timeout=PATIENCE, **quiet)
        server = Server(run, KEY, listen=("127.0.0.1", 0), serial=[line.coordinator_port], baud=BAUD, **quiet)
        serving, errors = serve_in_thread(server)
        a = AgentRuntime(agent_id=0, preference=source_a, **quiet)
        b = AgentRuntime(agent_id=1, preference=source_b, **quiet)
        result = {}
        agents = [threading.Thread(target=lambda: result.update(a=run_agent_serial(
                      line.agent_port, KEY, a, baud=BAUD, idle_timeout=silence, reconnect_seconds=PATIENCE,
                      log=logs.append)), daemon=True),
                  threading.Thread(target=lambda: run_agent_tcp(server.address, KEY, b, reconnect_seconds=PATIENCE,
                                                                **quiet), daemon=True)]
        for t in agents:
            t.start()
        ask_a, ask_b = wait_until(desk_a.next_open, "agent 0's comparison"), wait_until(desk_b.next_open, "1's")
        clock_passes(ask_a.posted + 1.5 * silence, "longer than the agent's silence limit")
        desk_a.answer(ask_a.id, "left")
        wait_until(lambda: run.runtime.slots[0].vote is not None, "agent 0's vote at the coordinator")
        voted = time.monotonic()
        # The other person answers once the serial agent has waited a while for the round result
        # (or has joined again, as it did before).
        wait_until(lambda: any("rejoining" in x for x in logs) or time.monotonic() > voted + silence / 2,
                   "half the silence limit after agent 0's vote")
        desk_b.answer(ask_b.id, "right")
        for t in [serving, *agents]:
            t.join(PATIENCE)
    assert not errors and not serving.is_alive() and a.done and b.done
    summary = run.finish()
    assert not [x for x in logs if "rejoining" in x or "joining again" in x], logs
    assert (result["a"].sessions, result["a"].link_failures) == (1, 0)
    serial, tcp = summary["per_agent"]
    assert (serial["transport"], serial["link_failures"], serial["joins"], tcp["joins"]) == ("serial", 0, 1, 1)
