"""Dishonest agents in a fleet: a majority of honest agents per block keeps the run learning.

On the example cart-pole (examples/cartpole: it learns from 395 to near its 1000 maximum in a
few dozen rounds, in seconds), 15 agents on 3 blocks (R = 5 per block), 12 rounds. Every run
is seeded, so its figures repeat exactly (when written: gains +292.9 honest, +230.7 with 3
flipping liars, +285.4 with 6 random ones, -24.4 with 9 flipping liars); the assertions are the user's question: does
the run still learn with f < R/2 liars per block, and does it stop learning when liars are the
majority (so that this test can fail)?
"""
from pathlib import Path

import pytest
from small_runs import KEY

from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.inproc import run_inproc
from fedzo.edge.learning.config import RunConfig
from fedzo.firmware_sim.behaviour import Behaviour, simulated_agents

CARTPOLE = Path(__file__).resolve().parents[2] / "examples" / "cartpole"


def gain(tmp_path, name, behaviour: Behaviour) -> float:
    config = RunConfig(task=str(CARTPOLE / "cartpole.xml"), actor=str(CARTPOLE / "cartpole.npz"), hidden="32,32",
                       panel_scale=55.0, agents=15, blocks=3, rounds=12, eval_every=0, eval_episodes=10, seed=0)
    run = Run(config, tmp_path / name, log=lambda *a: None, plots=False)
    agents = simulated_agents(config.agents, behaviour, log=lambda *a: None, task=config.task)
    summary = run_inproc(run, agents, KEY, log=lambda *a: None)
    return summary["gain"]


@pytest.mark.timeout(900)
def test_a_minority_of_liars_per_block_does_not_stop_learning_and_a_majority_does(tmp_path):
    honest = gain(tmp_path, "honest", Behaviour())
    assert honest > 150                                      # it learns (about +300 from 395)
    # One liar per block on average (3 of 15), always sending the wrong sign.
    flipping = gain(tmp_path, "flip", Behaviour(dishonest=3, lie="flip"))
    # Two per block on average (6 of 15), random signs.
    random_signs = gain(tmp_path, "random", Behaviour(dishonest=6, lie="random"))
    for liars in (flipping, random_signs):
        assert liars > 0.6 * honest
    # Three of five per block lie: the majority is theirs, and the run stops learning.
    assert gain(tmp_path, "majority", Behaviour(dishonest=9, lie="flip")) < 0.25 * honest
