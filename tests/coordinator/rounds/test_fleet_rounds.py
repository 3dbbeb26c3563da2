"""Fleets in real runs: n agents over K blocks, majority votes, sampled agents, misbehaving agents."""
import json

import numpy as np
import pytest
from small_runs import KEY, Harness, run_small, small_config

from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.inproc import run_inproc
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.learning.fleet import block_votes, round_plan
from fedzo.edge.protocol import Error, ErrorCode, RoundStart
from fedzo.firmware_sim.behaviour import Behaviour, SimulatedAgent, simulated_agents


def metrics(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_the_default_fleet_settings_change_nothing(tmp_path):
    # blocks = 0 and per_round = 0 (one agent per block, all asked) are today's runs, bit for bit.
    _, _, plain = run_small(tmp_path, "plain")
    _, _, explicit = run_small(tmp_path, "explicit", blocks=3, per_round=3)
    assert plain["theta_hash"] == explicit["theta_hash"]
    assert [m["votes"] for m in metrics(tmp_path / "plain")] == [m["votes"] for m in metrics(tmp_path / "explicit")]
    assert "agent_votes" not in metrics(tmp_path / "plain")[0]


def test_agents_of_a_block_vote_by_majority_and_every_replica_agrees(tmp_path):
    run, agents, summary = run_small(tmp_path, agents=6, blocks=2, rounds=4)
    config = run.config
    for m in metrics(tmp_path / "run"):
        plan = round_plan(config.seed, m["round"], 6, 2)
        agent_votes = {int(a): v for a, v in m["agent_votes"].items()}
        assert len(agent_votes) == 6 and len(m["votes"]) == 2        # n votes up, K votes down
        assert m["votes"] == block_votes(plan, agent_votes, 2)
    for agent in agents:                                             # no replica needed a Sync
        np.testing.assert_array_equal(agent.logic.store.values, run.store.values)
    assert all(a["syncs"] == 0 for a in summary["per_agent"])
    assert summary["blocks"] == 2 and summary["agents"] == 6
    assert summary["paper_bits_per_update"] == summary["d"] + 2


def test_the_agents_of_one_block_evaluate_that_block(tmp_path):
    run, agents, _ = run_small(tmp_path, agents=4, blocks=2, rounds=1)
    plan = round_plan(run.config.seed, 0, 4, 2)
    a, b = (int(x) for x in plan.agents_of(0))
    assert agents[a].logic.block_in(0) == agents[b].logic.block_in(0) == 0


def test_only_the_asked_agents_roll_out_and_the_others_still_follow(tmp_path):
    run, agents, summary = run_small(tmp_path, agents=6, blocks=2, per_round=3, rounds=5)
    asked = np.zeros(6, int)
    for t in range(5):
        asked[round_plan(run.config.seed, t, 6, 2, 3).asked_agents] += 1
    episodes = {a["id"]: a["episodes"] for a in summary["per_agent"]}
    assert [episodes[k] for k in range(6)] == (asked * 2).tolist()   # N = 1 comparison of 2 x D = 1 episodes
    assert summary["episodes"] == 5 * 3 * 2
    for agent in agents:
        np.testing.assert_array_equal(agent.logic.store.values, run.store.values)
    assert all(len(m["agent_votes"]) == 3 for m in metrics(tmp_path / "run"))


def test_a_round_start_for_an_agent_the_plan_leaves_out_is_refused(tmp_path):
    h = Harness(tmp_path, agents=4, blocks=2, per_round=2)
    agents = [AgentRuntime(log=lambda *a: None) for _ in range(4)]
    for agent in agents:
        h.connect(agent)
    h.step_all()                                   # Welcomes; the asked agents vote
    left_out = next(a for a in agents
                    if a.synced and not round_plan(h.config.seed, a.round, 4, 2, 2).asked(a.logic.index))
    replies = left_out.handle(RoundStart(left_out.round))
    assert isinstance(replies[0], Error) and replies[0].code == ErrorCode.BAD_MESSAGE
    assert "not asked" in replies[0].text


def test_the_same_fleet_over_tcp_agrees_with_the_in_process_run(tmp_path):
    from fedzo.coordinator.transports.tcp import simulate_tcp
    overrides = dict(agents=4, blocks=2, per_round=3, rounds=3, horizon=60)
    _, _, inproc = run_small(tmp_path, "inproc", **overrides)
    config = small_config(**overrides)
    run = Run(config, tmp_path / "tcp", log=lambda *a: None)
    tcp = simulate_tcp(run, KEY, log=lambda *a: None, timeout=240)
    assert tcp["theta_hash"] == inproc["theta_hash"]
    assert [m["agent_votes"] for m in metrics(tmp_path / "tcp")] == [m["agent_votes"] for m in metrics(tmp_path / "inproc")]
    assert all(a["syncs"] == 0 for a in tcp["per_agent"])


def _behaving_run(tmp_path, name, behaviour, **overrides):
    config = small_config(**overrides)
    run = Run(config, tmp_path / name, log=lambda *a: None)
    agents = simulated_agents(config.agents, behaviour, log=lambda *a: None, task=config.task)
    return run, agents, run_inproc(run, agents, KEY, log=lambda *a: None)


def test_liars_flip_their_votes_and_sleepers_abstain_without_rollouts(tmp_path):
    fleet = dict(agents=6, blocks=2, rounds=4)
    _, _, honest = run_small(tmp_path, "honest", **fleet)
    run, agents, _ = _behaving_run(tmp_path, "liars", Behaviour(dishonest=2, lie="flip"), **fleet)
    for good, bad in zip(metrics(tmp_path / "honest")[:1], metrics(tmp_path / "liars")[:1]):
        # Round 0 starts from the same theta: liars 0 and 1 send the opposite of the honest vote.
        for agent, vote in good["agent_votes"].items():
            expected = -vote if int(agent) < 2 else vote
            assert bad["agent_votes"][agent] == expected
    assert sum(a.lied for a in agents if isinstance(a, SimulatedAgent)) == 2 * 4
    run, agents, summary = _behaving_run(tmp_path, "sleepy", Behaviour(dropout=0.5), **fleet)
    slept = sum(a.slept for a in agents)
    assert 0 < slept < 6 * 4
    assert summary["episodes"] == (6 * 4 - slept) * 2                 # a sleeper spends no trajectories
    assert sum(m.get("abstained", 0) for m in metrics(tmp_path / "sleepy")) == slept
    for agent in agents:
        np.testing.assert_array_equal(agent.logic.store.values, run.store.values)


def test_behaviour_text_is_checked():
    assert Behaviour.parse("dishonest=3,lie=random,dropout=0.2") == Behaviour(3, "random", 0.2)
    assert not Behaviour.parse("").active
    for bad in ("dishonest=-1", "lie=sometimes", "dropout=1.5", "dropout=x", "sleepy=1", "dishonest"):
        with pytest.raises(ValueError):
            Behaviour.parse(bad)


def _drop_then_rejoin(tmp_path, rounds_away):
    """Agent 2 votes in round 0, loses its link before the result, and comes back (the same
    process, holding theta_0) after the others have run `rounds_away` more rounds."""
    h = Harness(tmp_path, rounds=rounds_away + 3)
    agents = [AgentRuntime(log=lambda *a: None) for _ in range(3)]
    for agent in agents:
        h.connect(agent)
    h.step_all()                                   # every agent votes in round 0; it closes
    h.dispatch(h.runtime.disconnected(h.links[2]))
    h.links[2].closed = True
    while h.runtime.round < rounds_away:
        h.step_all(skip=(2,))
    assert agents[2].round == 0 and agents[2].synced
    h.connect(agents[2])
    h.finish()
    np.testing.assert_array_equal(agents[2].logic.store.values, h.run.store.values)
    return h.runtime.slots[2]


def test_an_agent_that_missed_rounds_catches_up_from_their_results_not_a_sync(tmp_path):
    slot = _drop_then_rejoin(tmp_path, rounds_away=3)
    assert slot.catch_ups == 1 and slot.syncs == 0
    assert slot.discarded_votes == 0


def test_an_agent_behind_the_kept_results_gets_a_sync(tmp_path, monkeypatch):
    from fedzo.coordinator.rounds import runtime
    monkeypatch.setattr(runtime, "RECENT_ROUNDS", 2)      # round 0's result is gone by round 3
    slot = _drop_then_rejoin(tmp_path, rounds_away=3)
    assert slot.catch_ups == 0 and slot.syncs == 1
