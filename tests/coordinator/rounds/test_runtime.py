"""The federated runtime in one process: rounds, replicas, run folder, resume, determinism."""
import json

import numpy as np
import pytest
from small_runs import (
    KEY,
    PER_AGENT_FIELDS,
    SUMMARY_FIELDS,
    Harness,
    run_small,
    small_config,
)

from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.inproc import run_inproc
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.learning.config import RunConfig


def test_inproc_run_writes_the_run_folder_and_keeps_replicas_identical(tmp_path):
    run, agents, summary = run_small(tmp_path)
    assert SUMMARY_FIELDS <= set(summary)
    assert summary["rounds"] == 3 and summary["agents"] == 3
    assert summary["episodes"] == 3 * 3 * 1 * 2 * 1          # T x K x N x 2D
    assert summary["comparisons"] == 9
    assert summary["env_steps"] >= summary["episodes"]
    for a in summary["per_agent"]:
        assert PER_AGENT_FIELDS <= set(a)
        assert a["peak_rss_bytes"] >= a["floor_rss_bytes"] > 0
        assert a["learning_state_bytes"] > 0
    # Every agent's replica holds the coordinator's theta, bit for bit.
    for agent in agents:
        np.testing.assert_array_equal(agent.logic.store.values, run.store.values)
    folder = tmp_path / "run"
    metrics = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [m["round"] for m in metrics] == [0, 1, 2]
    assert all(len(m["votes"]) == 3 and set(m["votes"]) <= {-1, 0, 1} for m in metrics)
    assert metrics[-1]["return"] is not None                 # the last round is always evaluated
    assert RunConfig.from_dict(json.loads((folder / "config.json").read_text())) == small_config()
    assert (folder / "checkpoint.npz").exists()
    assert len(list(folder.glob("run-hopper-return-vs-*.png"))) == 4     # DESIGN.md §7: the run's plots
    # A middle round's metrics hold its whole traffic, the result broadcast included:
    # per agent 40 B vote up; one 42 B round result that also starts the next round
    # (protocol 4's round_result_next, K = 3) down, where protocol 3 sent 31 + 42 B.
    assert metrics[1]["bytes_up"] == 3 * 40 and metrics[1]["bytes_down"] == 3 * 42
    # Uplink: one vote per agent per round (plus the join and the final report).
    by_type = run.link_counters()[0][1].by_type["up"]
    assert by_type["vote"] == 3 and by_type["join"] == 1 and by_type["report"] == 1


def test_horizon_cuts_training_episodes_but_evaluation_reaches_the_time_limit(tmp_path):
    _, _, summary = run_small(tmp_path, horizon=50, agents=2, rounds=2)
    assert summary["env_steps"] <= 50 * summary["episodes"]
    assert summary["return_initial_train_horizon"] < 50 * 5     # hopper earns at most a few per step
    assert summary["return_initial"] > 50 * 5 and summary["eval_horizon"] == 1000


def test_same_seed_same_votes_and_bits(tmp_path):
    _, _, a = run_small(tmp_path, "a")
    _, _, b = run_small(tmp_path, "b")
    _, _, c = run_small(tmp_path, "c", seed=8)
    votes = lambda name: [json.loads(l)["votes"] for l in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    assert a["theta_hash"] == b["theta_hash"] and votes("a") == votes("b")
    assert a["bytes_up"] == b["bytes_up"]
    assert c["theta_hash"] != a["theta_hash"]


def test_fedavg_run_exchanges_float32_models_and_stays_identical(tmp_path):
    run, agents, summary = run_small(tmp_path, algo="fedavg-s2zpo", agents=2, rounds=2)
    for agent in agents:
        np.testing.assert_array_equal(agent.logic.store.values, run.store.values)
    d = run.store.d
    # The round's metrics include the averaged model sent back after it closed.
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["bytes_up"] > 2 * 4 * d and first["bytes_down"] > 2 * 4 * d
    counters = run.link_counters()[0][1]
    # Each round: a float32 model up and one down (in 16 KiB chunks), per agent.
    assert counters.total["up"].payload_bits >= 2 * 32 * d
    assert counters.total["down"].payload_bits >= 2 * 32 * d
    assert summary["bytes_per_agent_per_round_up"] > 4 * d


def test_gaussian_perturbation_runs_keep_replicas_identical(tmp_path):
    run, agents, summary = run_small(tmp_path, perturbation="gaussian", agents=2, rounds=2)
    _, _, rademacher = run_small(tmp_path, "r", agents=2, rounds=2)
    assert summary["theta_hash"] != rademacher["theta_hash"]
    for agent in agents:
        np.testing.assert_array_equal(agent.logic.store.values, run.store.values)


def test_resume_after_an_interruption_ends_bit_identical(tmp_path):
    _, _, whole = run_small(tmp_path, "whole", rounds=4)

    class Interrupt(Exception):
        pass

    config = small_config(rounds=4)
    run = Run(config, tmp_path / "cut", log=lambda *a: None)
    closed = run.runtime.on_round_closed

    def stop_after_two(info):
        closed(info)
        if info["round"] == 1:
            raise Interrupt()

    run.runtime.on_round_closed = stop_after_two
    agents = [AgentRuntime(log=lambda *a: None) for _ in range(config.agents)]
    with pytest.raises(Interrupt):
        run_inproc(run, agents, KEY, log=lambda *a: None)
    _, _, resumed = run_small(tmp_path, "cut", resume=True, rounds=4)
    assert resumed["theta_hash"] == whole["theta_hash"]
    # Bytes of both processes count; the resumed agents' rejoin and sync add to them.
    assert resumed["bytes_up"] > whole["bytes_up"] and resumed["bytes_down"] > whole["bytes_down"]
    metrics = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["round"] for l in metrics] == [0, 1, 2, 3]


def test_resume_refuses_a_different_config_and_a_missing_checkpoint(tmp_path):
    run_small(tmp_path, "r", rounds=2)
    with pytest.raises(ValueError, match="config differs"):
        Run(small_config(rounds=5), tmp_path / "r", resume=True, log=lambda *a: None)
    (tmp_path / "r" / "checkpoint.npz").unlink()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Run(small_config(rounds=2), tmp_path / "r", resume=True, log=lambda *a: None)


# ---- message-level faults, driven by hand ----

def test_missing_vote_counts_zero_at_the_deadline_and_the_agent_is_resynced_on_rejoin(tmp_path):
    h = Harness(tmp_path)
    for _ in range(3):
        h.connect(AgentRuntime(log=lambda *a: None))
    h.step_all(skip=(2,))              # agents 0 and 1 take the welcome and vote; 2 is silent
    assert h.runtime.round == 0        # still waiting for agent 2
    h.dispatch(h.runtime.disconnected(h.links[2]))
    h.links[2].closed = True
    assert h.runtime.round == 1        # the round closed without it
    metrics = h.run.folder.metrics()
    assert metrics[0]["votes"][2] == 0 and metrics[0]["voters"] == 2
    # The agent comes back as a new process (fresh runtime) with the same id.
    back = h.connect(AgentRuntime(agent_id=2, log=lambda *a: None))
    h.finish()
    assert h.runtime.slots[2].syncs == 1 and h.runtime.slots[2].link is back
    assert h.agents[3].synced and h.runtime.slots[2].discarded_votes == 0
    assert h.run.folder.metrics()[1]["voters"] == 3         # it voted in the round it joined
    np.testing.assert_array_equal(h.agents[3].logic.store.values, h.run.store.values)


def test_round_deadline_closes_a_round_when_an_agent_hangs(tmp_path):
    h = Harness(tmp_path, agents=2)
    for _ in range(2):
        h.connect(AgentRuntime(log=lambda *a: None))
    h.step_agent(0)                    # only agent 0 votes; agent 1 hangs
    assert h.runtime.round == 0
    h.now += 6.0                       # past the 5 s round timeout
    h.dispatch(h.runtime.tick())
    assert h.runtime.round == 1
    assert h.run.folder.metrics()[0]["votes"][1] == 0


def test_a_diverged_replica_is_detected_by_its_hash_and_resynced(tmp_path):
    h = Harness(tmp_path, agents=2)
    for _ in range(2):
        h.connect(AgentRuntime(log=lambda *a: None))
    h.step_agent(0)

    def flip_a_bit(agent):                        # a bit flips in agent 1's memory
        agent.logic.store.values[10] ^= 1

    h.step_agent(1, before_round_start=flip_a_bit)   # its vote carries another hash
    slot = h.runtime.slots[1]
    assert slot.discarded_votes == 1 and slot.syncs == 1
    assert h.run.folder.metrics()[0]["votes"][1] == 0
    h.finish()                                    # sync, then the rounds go on
    assert h.agents[1].synced
    assert slot.discarded_votes == 1              # its later votes carried the right hash
    assert all(m["votes"][1] != 0 for m in h.run.folder.metrics()[1:])
    np.testing.assert_array_equal(h.agents[1].logic.store.values, h.run.store.values)


def test_unknown_agent_and_full_run_are_refused_and_counted(tmp_path):
    h = Harness(tmp_path, agents=1)
    h.connect(AgentRuntime(log=lambda *a: None))
    stranger = h.connect(AgentRuntime(agent_id=9, log=lambda *a: None))
    assert stranger.closed and h.runtime.rejected["unknown_agent"] == 1
    extra = h.connect(AgentRuntime(log=lambda *a: None))
    assert extra.closed and h.runtime.rejected["run_full"] == 1
    h.step_agent(0)
    assert h.runtime.phase == "round"             # the real agent is served on


def test_stale_and_duplicate_votes_are_rejected(tmp_path):
    from fedzo.edge.protocol import Vote
    h = Harness(tmp_path, agents=2)
    for _ in range(2):
        h.connect(AgentRuntime(log=lambda *a: None))
    slot0 = h.runtime.slots[0]                    # round 0 is open; no agent has voted
    out = h.runtime.received(h.links[0], Vote(5, 1, h.runtime.round_digest))
    assert h.runtime.rejected["stale_vote"] == 1 and out[0][1].code == 6   # STALE_ROUND
    h.runtime.received(h.links[0], Vote(0, 1, h.runtime.round_digest))
    h.runtime.received(h.links[0], Vote(0, -1, h.runtime.round_digest))
    assert slot0.vote == 1 and h.runtime.rejected["stale_vote"] == 2


def test_an_agent_over_its_memory_budget_declines_before_it_takes_a_slot(tmp_path):
    """Issue 12: the budget was checked only after the Welcome, so the slot was taken
    (and a run could start) with an agent about to leave. Now the Challenge's terms
    decide it: no Join, no slot, a counted decline; the run waits for others."""
    from fedzo.edge.agent.refused import BudgetTooSmall
    h = Harness(tmp_path, agents=2)
    small = AgentRuntime(memory_budget=10 * 2**20, log=lambda *a: None)   # 10 MiB: far too little
    with pytest.raises(BudgetTooSmall, match="memory budget 10.0 MiB is below") as refused:
        h.connect(small)
    link = h.links[0]
    for msg in refused.value.goodbye():             # what the agent loops send before leaving
        if not link.closed:
            h.deliver_up(link, link.agent_end.send(msg))
    assert link.closed and h.runtime.rejected["declined"] == 1
    assert h.runtime.connected() == [] and all(s.joins == 0 for s in h.runtime.slots)
    assert small.logic is None and small.round is None           # it never received theta
    for _ in range(2):
        h.connect(AgentRuntime(log=lambda *a: None))
    assert h.runtime.phase == "round" and [s.in_round for s in h.runtime.slots] == [True, True]


def test_an_agent_round_allocates_nothing_proportional_to_d(tmp_path):
    """Beyond the block scratch made once, a round's Python allocations stay far below d.

    On the C kernel: the NumPy fallback works in fixed chunks instead, whose
    bound is tested in test_kernel.py.
    """
    from isolated import peak_allocation

    from fedzo.edge import kernel
    if "c" not in kernel.implementations():
        pytest.skip("the C kernel is not built here")
    setup = f"""
from pathlib import Path
from small_runs import Harness
from fedzo.edge.agent.runtime import AgentRuntime
h = Harness(Path({str(tmp_path)!r}), agents=2, rounds=6)
for _ in range(2):
    h.connect(AgentRuntime(log=lambda *a: None))
h.step_all()                                 # warm up: welcome, first rounds
h.step_all()
agent = h.agents[0]
report['d'] = agent.logic.store.d
"""
    measured = """
for round_ in (10, 11):                       # vote and apply, as the runtime does each round
    agent.logic.vote(round_)
    agent.logic.apply(round_, [1, -1])
    agent.logic.digest()
"""
    result = peak_allocation(setup, measured, env={"FEDZO_KERNEL": "c"})
    d = result["d"]
    # A few KB of constant overhead (generators, small arrays); one int16 copy
    # of theta alone would be 2d bytes on top of it.
    assert result["peak"] < 2 * d, f"a round allocated {result['peak']} bytes at its peak (d = {d})"


# ---- joins and slots (issue 11, finding 3) ----

def _hello_join(h, link, agent):
    """The agent on `link` starts a new session on the same link: Hello, then its Join."""
    h.deliver_up(link, link.agent_end.send(agent.hello()))
    h.step_agent(h.links.index(link))


def test_a_second_join_on_one_link_leaves_it_in_one_slot(tmp_path):
    """A second Join on one connection put the link in two slots, and every
    later round waited the full round timeout for the slot that never voted."""
    from fedzo.edge.protocol import ASSIGN_AGENT_ID
    h = Harness(tmp_path, agents=3)
    for _ in range(2):
        h.connect(AgentRuntime(log=lambda *a: None))
    h.step_all()                                   # welcomes; the run waits for a third agent
    link0, agent0 = h.links[0], h.agents[0]
    agent0.agent_id = ASSIGN_AGENT_ID              # ask for any free slot this time
    _hello_join(h, link0, agent0)
    assert [s.agent_id for s in h.runtime.slots if s.link is link0] == [2]
    assert h.runtime.slots[0].link is None         # its first slot is free again
    h.connect(AgentRuntime(log=lambda *a: None))   # a third agent takes it
    assert sorted(s.agent_id for s in h.runtime.connected()) == [0, 1, 2]
    h.finish()                                     # the clock never moves: no round may wait for a deadline
    assert all(m["voters"] == 3 for m in h.run.folder.metrics())
    for agent in h.agents:
        np.testing.assert_array_equal(agent.logic.store.values, h.run.store.values)


def test_a_key_holder_cannot_take_a_live_agents_id(tmp_path):
    """Any key holder could Join with another agent's id: the victim was told Bye and
    exited, and the insider voted in its slot. Now a live slot needs its session's
    secret, or the holder's silence for the takeover time."""
    from fedzo.edge.protocol import Bye, ByeReason, Error, ErrorCode
    h = Harness(tmp_path, agents=3)
    for _ in range(2):
        h.connect(AgentRuntime(log=lambda *a: None))
    h.step_all()
    victim = h.links[1]
    insider = h.connect(AgentRuntime(agent_id=1, log=lambda *a: None))
    refusal = [m for m in insider.agent_end.feed(b"".join(insider.to_agent))]
    assert insider.closed and h.runtime.rejected["id_in_use"] == 1
    assert [type(m) for m in refusal] == [Error] and refusal[0].code == ErrorCode.ID_IN_USE
    assert h.runtime.slots[1].link is victim and not victim.closed and not victim.to_agent
    # Silent for less than the takeover time: still refused.
    h.now += 0.9 * h.runtime.takeover_silence
    assert h.connect(AgentRuntime(agent_id=1, log=lambda *a: None)).closed
    # Silent for the takeover time (the victim is gone without a word): the id is taken over.
    h.now += 0.2 * h.runtime.takeover_silence
    late = h.connect(AgentRuntime(agent_id=1, log=lambda *a: None))
    assert h.runtime.slots[1].link is late and victim.closed
    assert victim.agent_end.feed(b"".join(victim.to_agent))[-1] == Bye(ByeReason.REPLACED,
                                                                        "a newer session took this agent id")
    assert h.runtime.rejected["id_in_use"] == 2


def test_an_agent_with_its_session_secret_takes_its_id_back_at_once(tmp_path):
    from fedzo.coordinator.transports.inproc import InprocLink
    from fedzo.edge.protocol import Endpoint
    h = Harness(tmp_path, agents=2)
    for _ in range(2):
        h.connect(AgentRuntime(log=lambda *a: None))
    h.step_all()
    old = h.links[1]
    agent = h.agents[1]
    # The same agent on a new connection (the old one is half-open): its Session keeps
    # the last session's rejoin secret.
    new = InprocLink(len(h.links), KEY, h.secrets)
    new.agent_end = Endpoint(old.agent_end.session)
    h.agents.append(agent)
    h.links.append(new)
    _hello_join(h, new, agent)
    assert h.runtime.slots[1].link is new and old.closed
    assert h.runtime.rejected["id_in_use"] == 0
    h.finish()
    np.testing.assert_array_equal(agent.logic.store.values, h.run.store.values)


def test_bye_replaced_ends_the_session_not_the_run():
    from fedzo.edge.protocol import Bye, ByeReason
    agent = AgentRuntime(log=lambda *a: None)
    assert agent.handle(Bye(ByeReason.REPLACED)) == [] and agent.rejoin and not agent.done
    agent.hello()
    assert not agent.rejoin
    agent.handle(Bye(ByeReason.DONE))
    assert agent.done


def test_id_in_use_ends_the_session_and_backs_off():
    from fedzo.edge.agent.reconnect import MAX_DELAY, in_use_delay
    from fedzo.edge.protocol import Error, ErrorCode
    agent = AgentRuntime(agent_id=1, log=lambda *a: None)
    agent.handle(Error(ErrorCode.ID_IN_USE, "held"))
    agent.handle(Error(ErrorCode.ID_IN_USE, "held"))
    assert agent.rejoin and not agent.done and agent.in_use_refusals == 2
    assert in_use_delay(1) < in_use_delay(2) < in_use_delay(20) == MAX_DELAY


def test_an_agent_whose_last_result_comes_with_the_final_bye_ends_quietly(tmp_path):
    # The coordinator stops waiting for reports at its report deadline; an agent stepped
    # only then gets its last RoundResult and the Bye in one batch. Its Report cannot be
    # sent (the session is over): dropped, as on TCP, never an exception that fails the run.
    from fedzo.coordinator.transports.inproc import _agent_step
    h = Harness(tmp_path, rounds=1)
    agents = [AgentRuntime(log=lambda *a: None) for _ in range(3)]
    for agent in agents:
        h.connect(agent)
    h.step_all()                                   # Welcomes and votes: round 0 closes, the run is finishing
    h.step_all(skip=(0,))                          # agents 1 and 2 report; agent 0 is slow
    assert h.runtime.phase == "finishing"
    h.run.recorder.wait()
    h.now += h.runtime.report_timeout + 1
    h.dispatch(h.runtime.tick())
    assert h.runtime.done
    link = h.links[0]
    data, link.to_agent = b"".join(link.to_agent), []
    assert _agent_step(agents[0], link, data) == []
    assert agents[0].done and agents[0].round == 1       # it applied the result, then heard the Bye


def test_bytes_per_round_and_per_agent_are_the_links_own_counts_across_a_rejoin(tmp_path):
    """The run keeps running byte sums (issue 13: no walk over every link each round);
    they must be what the links themselves counted, an agent's two links included."""
    h = Harness(tmp_path, rounds=4)
    for _ in range(3):
        h.connect(AgentRuntime(log=lambda *a: None))
    h.step_all(skip=(2,))
    h.dispatch(h.runtime.disconnected(h.links[2]))
    h.links[2].closed = True
    h.connect(AgentRuntime(agent_id=2, log=lambda *a: None))      # a second link for agent 2
    h.finish()
    summary = h.run.finish()
    assert len(h.runtime.slots[2].links) == 2
    for slot, entry in zip(h.runtime.slots, summary["per_agent"]):
        for d in ("up", "down"):
            assert entry[f"bytes_{d}"] == sum(link.counters.total[d].frame_bytes for link in slot.links)
            assert entry[f"payload_bits_{d}"] == sum(link.counters.total[d].payload_bits for link in slot.links)
    links = [link for slot in h.runtime.slots for link in slot.links]
    metrics = h.run.folder.metrics()
    # A line is written as its round closes; what the links count for that round later is
    # not in it: the last round's Reports and Byes, and the rejoining link's Hello and Join,
    # which count for round 0 on that link (no round seen yet on it).
    for line in metrics[1:-1]:
        for d in ("up", "down"):
            stats = [link.counters.rounds.get(line["round"], {}).get(d) for link in links]
            assert line[f"bytes_{d}"] == sum(s.frame_bytes for s in stats if s)
            assert line[f"payload_bits_{d}"] == sum(s.payload_bits for s in stats if s)
    assert sum(line["bytes_up"] for line in metrics) > 0
