"""A person's answers drive a run, and a replay of them repeats it bit for bit."""
import json

import pytest
from people import ScriptedPerson, human_sources
from small_runs import KEY, small_config

from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.inproc import run_inproc
from fedzo.edge.agent.runtime import AgentRefused, AgentRuntime
from fedzo.edge.human.replay import ReplayPreference


def _run(tmp_path, name, sources, **overrides):
    config = small_config(preference="human", horizon=60, **overrides)
    run = Run(config, tmp_path / name, log=lambda *a: None)
    agents = [AgentRuntime(log=lambda *a: None, preference=s) for s in sources]
    summary = run_inproc(run, agents, KEY, workers=len(agents), log=lambda *a: None)
    return run, summary


def test_a_scripted_person_drives_a_run_and_its_replay_repeats_theta(tmp_path):
    answers = tmp_path / "answers.jsonl"
    desk, sources = human_sources(3, answers)
    with ScriptedPerson(desk) as person:
        run, summary = _run(tmp_path, "live", sources)
    records = [json.loads(line) for line in answers.read_text().splitlines()]
    assert len(records) == len(person.answered) == 3 * 3          # K agents x T rounds x N = 1
    assert {r["answer"] for r in records} == {"left", "right", "tie"}
    assert {r["candidate"] for r in records} == {"left", "right"}  # the side is drawn, not fixed
    for r in records:
        assert r["outcome"] == (0 if r["answer"] == "tie" else 1 if r["answer"] == r["candidate"] else -1)
        assert set(r) == {"agent", "round", "comparison", "candidate", "answer", "outcome", "seconds"}

    # Each agent's vote is its person's answer (a tie: the seed's tie bit).
    from fedzo.edge.learning.algorithm import agent_vote
    votes = [json.loads(line)["votes"] for line in (tmp_path / "live" / "metrics.jsonl").read_text().splitlines()
             if "votes" in json.loads(line)]
    for r in records:
        assert votes[r["round"]][r["agent"]] == agent_vote(r["outcome"], 7, r["agent"], r["round"])

    _, replayed = _run(tmp_path, "replay", [ReplayPreference(answers) for _ in range(3)])
    assert replayed["theta_hash"] == summary["theta_hash"]


def test_a_replay_of_another_run_or_a_short_file_is_refused(tmp_path):
    answers = tmp_path / "answers.jsonl"
    desk, sources = human_sources(3, answers)
    with ScriptedPerson(desk):
        _run(tmp_path, "live", sources, rounds=1)
    lines = answers.read_text().splitlines()
    flipped = tmp_path / "flipped.jsonl"
    flipped.write_text("\n".join(
        json.dumps({**json.loads(x), "candidate": {"left": "right", "right": "left"}[json.loads(x)["candidate"]]})
        for x in lines) + "\n")
    for path, what in ((flipped, "recorded for another run"), (answers, "no \\(further\\) answer")):
        source = ReplayPreference(path)
        rounds = 2 if path == answers else 1
        agent = AgentRuntime(log=lambda *a: None, preference=source)
        run = Run(small_config(preference="human", horizon=60, rounds=rounds, agents=1), tmp_path / f"r{rounds}",
                  log=lambda *a: None)
        from fedzo.coordinator.transports.inproc import InprocLink, _agent_step
        from fedzo.edge.protocol import RejoinSecrets
        with pytest.raises(AgentRefused, match=what):
            _drive_one(run, agent, InprocLink(0, KEY, RejoinSecrets()), _agent_step)


def _drive_one(run, agent, link, step):
    """Run a one-agent run by hand until the agent raises (the refusal under test)."""
    from fedzo.coordinator.rounds.runtime import CLOSE
    pending = [link.agent_end.send(agent.hello())]
    for _ in range(100):
        out = []
        for data in pending:
            for msg in link.coordinator_end.feed(data):
                out += run.runtime.received(link, msg)
        out += run.runtime.tick()
        run.runtime.after_dispatch()
        down = b"".join(link.coordinator_end.send(m) for _, m in out if m is not CLOSE)
        pending = step(agent, link, down) if down else []
    raise AssertionError("the agent was never refused")


def test_a_human_run_needs_a_person_and_a_person_needs_a_human_run(tmp_path):
    from fedzo.coordinator.transports.inproc import InprocLink, _agent_step
    from fedzo.edge.learning.preference import make_preference
    from fedzo.edge.protocol import RejoinSecrets
    with pytest.raises(ValueError, match="--human"):
        make_preference(small_config(preference="human"))
    _, sources = human_sources(1, tmp_path / "answers.jsonl")
    for name, preference, source in (("panel", "panel", sources[0]), ("human", "human", None)):
        run = Run(small_config(preference=preference, agents=1), tmp_path / name, log=lambda *a: None)
        agent = AgentRuntime(log=lambda *a: None, preference=source)
        with pytest.raises(AgentRefused, match="only a human run"):
            _drive_one(run, agent, InprocLink(0, KEY, RejoinSecrets()), _agent_step)
