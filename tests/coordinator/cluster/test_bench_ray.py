"""`fedzo bench ray` at a small size: it measures both sides and the two simulations agree."""
import json

import pytest
from local_ray import import_ray

from fedzo.cli import main
from fedzo.coordinator.cluster import bench

import_ray()


@pytest.mark.slow
def test_bench_ray_prints_both_measurements(monkeypatch, capsys):
    monkeypatch.setattr(bench, "GRID", {**bench.GRID, "seeds": [0], "budget_episodes": 4,
                                        "base": {**bench.GRID["base"], "horizon": 100}})
    monkeypatch.setattr(bench, "GRID_CELLS", 2)
    monkeypatch.setattr(bench, "GRID_REPEATS", 1)
    monkeypatch.setattr(bench, "SIM_AGENTS", 6)
    monkeypatch.setattr(bench, "SIM", {**bench.SIM, "rounds": 3, "horizon": 50})
    assert main(["bench", "ray", "--json"]) == 0
    grid, sim = json.loads(capsys.readouterr().out)
    assert grid["cells"] == 2 and grid["pool_s"] > 0 and grid["ray_s"] > 0 and grid["ray_start_s"] > 0
    assert sim["agents"] == 6 and sim["inproc_round_s"] > 0 and sim["ray_round_s"] > 0
    assert sim["same_theta"] and sim["same_bytes"]
    text = bench.format_table([grid, sim])
    assert "overhead per cell on Ray" in text and "same theta hash: yes; same bytes: yes" in text
