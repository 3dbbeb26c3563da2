"""Absent agents (issue 12, item 5): a round does not wait for an agent that said nothing
through the whole previous round, until it speaks again. Driven by hand on the Harness's
fake clock: a round that waits for its deadline closes only when the clock is moved."""
from small_runs import Harness, run_small

from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.protocol import Error, ErrorCode, RoundResultNext, RoundStart

PAST_THE_DEADLINE = 6.0        # seconds; the Harness's round timeout is 5 s


def _three_agents(tmp_path, rounds=6):
    h = Harness(tmp_path, agents=3, rounds=rounds)
    for _ in range(3):
        h.connect(AgentRuntime(log=lambda *a: None))
    return h


def _silence_agent_2_for_round_0(h):
    """Agents 0 and 1 vote in round 0; agent 2 says nothing, so round 0 closes at its deadline."""
    h.step_all(skip=(2,))
    assert h.runtime.round == 0                    # round 0 waits for agent 2
    h.now += PAST_THE_DEADLINE
    h.dispatch(h.runtime.tick())
    assert h.runtime.round == 1


def test_a_silent_agent_costs_one_round_timeout_then_rounds_close_without_it(tmp_path):
    h = _three_agents(tmp_path)
    _silence_agent_2_for_round_0(h)
    for _ in range(2):                             # rounds 1 and 2: the clock stands still
        h.step_all(skip=(2,))
    assert h.runtime.round == 3                    # before: round 1 waited for its deadline
    assert h.runtime.slots[2].absent
    metrics = h.run.folder.metrics()
    assert [m["absent"] for m in metrics] == [[], [2], [2]]    # round 0 waited for it: late, not absent
    assert [m["votes"][2] for m in metrics] == [0, 0, 0]
    assert [m["voters"] for m in metrics] == [2, 2, 2]


def test_an_absent_agent_that_speaks_again_votes_and_is_waited_for(tmp_path):
    h = _three_agents(tmp_path)
    _silence_agent_2_for_round_0(h)
    h.step_all(skip=(2,))                          # round 1 closes without agent 2
    assert h.runtime.round == 2 and h.runtime.slots[2].absent
    # Agent 2 wakes up: it works through its backlog (its votes for rounds 0 and 1 are
    # stale) and votes in the open round 2, which counts.
    h.step_agent(2)
    assert not h.runtime.slots[2].absent and h.runtime.slots[2].vote is not None
    h.step_all(skip=(2,))
    metrics = h.run.folder.metrics()
    assert metrics[2]["absent"] == [] and metrics[2]["voters"] == 3 and metrics[2]["votes"][2] != 0
    # Present again: round 3 waits for its vote, until the deadline.
    h.step_all(skip=(2,))
    assert h.runtime.round == 3
    h.now += PAST_THE_DEADLINE
    h.dispatch(h.runtime.tick())
    assert h.runtime.round == 4 and h.runtime.slots[2].absent
    # Every agent is stepped in id order until the end: round 4 closes on the votes of
    # agents 0 and 1, before agent 2 speaks; in round 5 it is present again.
    h.finish()
    assert h.runtime.round == 6
    assert [m["absent"] for m in h.run.folder.metrics()] == [[], [2], [], [], [2], []]
    summary = h.run.finish()
    assert [a["absent_rounds"] for a in summary["per_agent"]] == [0, 0, 2]
    assert h.agents[2].logic.digest() == h.run.store.digest()   # its replica kept up throughout


class HungAgent(AgentRuntime):
    """An agent that joins and takes its Welcome, then never answers a round's start
    (a RoundStart, or the start in a RoundResultNext: it takes only the result)."""

    def handle(self, msg):
        if isinstance(msg, RoundResultNext):
            return self._on_round_result(msg)
        return [] if isinstance(msg, RoundStart) else super().handle(msg)


def test_an_absent_agent_that_speaks_without_voting_is_present_again(tmp_path):
    h = Harness(tmp_path, agents=3)
    for agent in (AgentRuntime(log=lambda *a: None), AgentRuntime(log=lambda *a: None),
                  HungAgent(log=lambda *a: None)):
        h.connect(agent)
    _silence_agent_2_for_round_0(h)
    h.step_agent(2)                                # it takes its Welcome and ignores RoundStarts
    assert h.runtime.slots[2].absent
    link = h.links[2]
    h.deliver_up(link, link.agent_end.send(Error(ErrorCode.BAD_MESSAGE, "still here")))
    assert not h.runtime.slots[2].absent
    h.step_all(skip=(2,))
    assert h.runtime.round == 1                    # round 1 now waits for agent 2's vote


def test_a_round_whose_agents_are_all_absent_waits_for_its_deadline(tmp_path):
    """A run whose every agent hangs must not race through its rounds with no votes."""
    h = Harness(tmp_path, agents=2, rounds=4)
    for _ in range(2):
        h.connect(AgentRuntime(log=lambda *a: None))
    for expected in (1, 2):
        assert h.runtime.round == expected - 1
        h.now += PAST_THE_DEADLINE
        h.dispatch(h.runtime.tick())
        assert h.runtime.round == expected
    assert all(s.absent for s in h.runtime.slots)
    assert [m["absent"] for m in h.run.folder.metrics()] == [[], [0, 1]]


def test_a_departed_agent_is_not_absent_and_a_rejoin_is_present(tmp_path):
    h = _three_agents(tmp_path)
    _silence_agent_2_for_round_0(h)
    h.dispatch(h.runtime.disconnected(h.links[2]))
    h.links[2].closed = True
    assert not h.runtime.slots[2].absent
    h.connect(AgentRuntime(agent_id=2, log=lambda *a: None))
    assert not h.runtime.slots[2].absent
    h.finish()
    assert all(m["absent"] == [] for m in h.run.folder.metrics())


def test_a_healthy_run_has_no_absences_and_never_waits(tmp_path):
    h = _three_agents(tmp_path, rounds=3)
    h.finish()                                     # the clock never moves
    assert all(m["absent"] == [] and m["voters"] == 3 for m in h.run.folder.metrics())
    _, _, summary = run_small(tmp_path)
    assert [a["absent_rounds"] for a in summary["per_agent"]] == [0, 0, 0]
