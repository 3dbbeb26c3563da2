"""The round table of `fedzo bench rollout` (edge/bench/rounds.py, issue 15 item 6): its workload,
its limit's replay, its memory figures and its printout (never timing assertions)."""
import numpy as np

from fedzo.edge.bench import rounds


def test_the_workload_is_the_rounds_episodes_and_the_replay_follows_them():
    agent, work = rounds.round_work("hopper", 2)
    config = agent.config
    assert len(work) == 2
    for variants, jobs in work:
        assert len(jobs) == 2 * config.comparisons * config.batch
        assert not np.array_equal(variants[0], variants[1])       # theta and theta + mu v
    episodes = rounds.recorded_controls(agent.task, agent.policy, work)
    end = agent.task.data.qpos.copy()
    rounds.replay(agent.task, episodes)                           # bare mj_step on the same controls
    np.testing.assert_array_equal(agent.task.data.qpos, end)
    # and N processes replaying the same workload come back, each having run it
    processes = rounds.ReplayProcesses(agent.task, episodes, 2)
    try:
        processes.run()
        processes.run()
    finally:
        processes.close()
    assert processes.pids == []


def test_one_record_has_every_figure_and_prints_as_a_table():
    record = rounds.measure("hopper", workers=2, rounds=1, repeats=1)
    assert record["workers"] == 2 and record["episodes"] == 4 and record["env_steps"] > 0
    for key in ("fedzo_1_steps_per_s", "fedzo_n_steps_per_s", "raw_1_steps_per_s", "raw_n_steps_per_s",
                "fedzo_1_over_raw_1", "fedzo_n_over_raw_n", "fedzo_speedup", "raw_speedup"):
        assert record[key] > 0, key
    assert record["worker_deaths"] == 0
    memory = record["memory"]
    assert [m["workers"] for m in memory] == [1, 2, 4]
    assert [len(m["worker_uss_bytes"]) for m in memory] == [0, 1, 3]
    assert all(u > 0 for m in memory for u in m["worker_uss_bytes"])
    assert all("pss_per_extra_worker_bytes" in m for m in memory[1:])
    table = rounds.format_table(record)
    for text in ("1 worker", "2 workers", "the limit: goal >= 0.85", "goal >= 0.95", "each extra worker adds",
                 "load average"):
        assert text in table, text


def test_the_cli_refuses_a_bad_worker_count_before_measuring(capsys):
    from fedzo import cli
    assert cli.main(["bench", "rollout", "--workers", "0"]) == 2
    assert "--workers must be a positive whole number, got 0" in capsys.readouterr().err
