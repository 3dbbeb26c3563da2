"""`fedzo bench human`: the page's bytes, and how long a person took (the RSS runs are left to the command)."""
import json

import pytest

from fedzo.coordinator.tools.bench_human import answer_times, page_and_comparison_bytes
from fedzo.edge.human.server import read_asset


def test_the_page_and_a_comparison_are_measured_on_the_wire():
    r = page_and_comparison_bytes("swimmer", batch=1)
    assets = len(read_asset("page.html")) + len(read_asset("page.js"))
    assert assets < r["page_load_bytes"] < assets + 2000            # the files plus two responses' headers
    assert r["clip_bytes"] == r["frames"] * 3 * 7 * 4               # swimmer: 3 moving geoms, 7 float32 each
    assert r["clip_bytes"] * 4 / 3 < r["comparison_bytes"] < r["clip_bytes"] * 4 / 3 + 4000   # base64 + JSON


def test_a_persons_time_is_read_from_the_answers_file(tmp_path):
    path = tmp_path / "answers.jsonl"
    lines = [{"agent": 0, "round": r, "comparison": 0, "candidate": "left", "answer": "tie", "outcome": 0,
              "seconds": s} for r, s in enumerate((2.0, 4.0, 9.0))]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert answer_times(path) == {"answers": 3, "total_seconds": 15.0, "median_seconds": 4.0,
                                  "slowest_seconds": 9.0, "seconds_per_20": 100.0}
    path.write_text('{"agent": 0}\n')
    with pytest.raises(ValueError, match="answers.jsonl:1"):
        answer_times(path)
