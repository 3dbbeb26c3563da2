"""`fedzo export`: a run's theta as an actor file that eval and a new run accept."""
import json

import numpy as np
import pytest

from fedzo.cli import main
from fedzo.coordinator.run.trained import load_trained
from fedzo.edge.learning.algorithm import initial_store, load_actor
from fedzo.edge.learning.config import RunConfig
from fedzo.edge.policy.mlp import Actor
from small_runs import run_small

RUN = dict(agents=2, rounds=3, horizon=40, eval_episodes=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    run_small(tmp, **RUN)
    return tmp / "run"


def metrics(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_the_final_theta_is_the_checkpoint_bit_for_bit(trained, tmp_path, capsys):
    out = tmp_path / "final.npz"
    assert main(["export", str(trained), "--out", str(out)]) == 0
    assert "theta after 3 rounds" in capsys.readouterr().out
    actor, (_, store, _) = Actor.load(out), load_trained(trained)
    assert actor.task == "hopper" and actor.hidden == (64, 64)
    assert np.array_equal(actor.theta, store.to_float())
    assert actor.info["theta_hash"] == metrics(trained)[-1]["theta_hash"] == store.digest().hex()
    # a new run from it, at the recorded scale, starts from exactly these bits
    again = RunConfig(task="hopper", actor=str(out), frac_bits=actor.info["store"]["frac_bits"])
    assert initial_store(again, load_actor(again)).digest() == store.digest()


def test_an_earlier_round_is_rebuilt_from_the_votes(trained, tmp_path):
    records = metrics(trained)
    assert any(any(r["votes"]) for r in records[:2])          # the rounds moved theta
    for round_ in (0, 1, 2):
        out = tmp_path / f"r{round_}.npz"
        assert main(["export", str(trained), "--out", str(out), "--round", str(round_)]) == 0
        assert Actor.load(out).info["theta_hash"] == records[round_]["theta_hash"]


def test_bad_requests_get_one_line(trained, tmp_path, capsys):
    out = str(tmp_path / "x.npz")
    cases = [([str(tmp_path / "nothing"), "--out", out], "not a run folder"),
             ([str(trained), "--out", out, "--round", "3"], "round 3 is not one of the run's finished rounds"),
             ([str(trained), "--out", str(tmp_path / "x.txt")], "must name a .npz file")]
    for argv, message in cases:
        assert main(["export", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "x.npz").exists()


def test_a_rebuild_that_disagrees_with_the_record_is_refused(trained, tmp_path, capsys):
    folder = tmp_path / "edited"
    folder.mkdir()
    for f in trained.iterdir():
        if f.is_file():
            (folder / f.name).write_bytes(f.read_bytes())
    records = metrics(folder)
    records[0]["votes"] = [-v if v else 1 for v in records[0]["votes"]]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main(["export", str(folder), "--out", str(tmp_path / "y.npz"), "--round", "1"]) == 2
    assert "does not match the hash metrics.jsonl records for round 1" in capsys.readouterr().err


def test_eval_and_a_new_run_take_the_exported_actor(trained, tmp_path, capsys):
    out = tmp_path / "policy.npz"
    assert main(["export", str(trained), "--out", str(out)]) == 0
    assert main(["eval", "--policy", str(out), "--episodes", "1"]) == 0
    printed = capsys.readouterr().out
    assert "hopper     float: return" in printed and "quantised" in printed
    with pytest.raises(SystemExit, match="is a run, not an actor file: fedzo eval --run"):
        main(["eval", "--policy", str(trained / "checkpoint.npz")])
    # a new run starts from it (the agents get theta_0 by Sync) and trains on
    _, _, summary = run_small(tmp_path, name="again", actor=str(out), **{**RUN, "rounds": 1})
    assert summary["rounds"] == 1 and all(a["syncs"] >= 1 for a in summary["per_agent"])
