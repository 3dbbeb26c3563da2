"""The progress line's time estimate: the pace after the first round, not the first round's."""
from small_runs import run_small

from fedzo.coordinator.run import lifecycle


def test_time_left_follows_the_pace_after_the_first_round(tmp_path, monkeypatch):
    run, _, _ = run_small(tmp_path, agents=2, rounds=1, eval_episodes=1, horizon=20)
    run.config.rounds = 11          # as if this process had 10 rounds still to run
    run._pace_start = None
    clock = iter([100.0, 102.0, 104.0])
    monkeypatch.setattr(lifecycle.time, "monotonic", lambda: next(clock))
    assert run._time_left(1).startswith("~? s")       # the first round paid for start-up: no guess
    assert run._time_left(2) == "~18 s"               # 2 s a round since then, 9 rounds to go
    assert run._time_left(3) == "~16 s"
