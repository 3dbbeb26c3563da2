"""`fedzo eval --run RUN_DIR --html FILE`: the start and the trained theta replayed side by side,
drawn by the comparison page's own script, from a file that needs no server."""
import base64
import json
from pathlib import Path

import numpy as np
import pytest
from browser import requested_urls, start_browser
from small_runs import run_small
from waiting import wait_until

from fedzo.cli import main
from fedzo.coordinator.tools.replay_page import STATIC

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "cartpole"
USER_TASK = dict(task=str(EXAMPLE / "cartpole.xml"), actor=str(EXAMPLE / "cartpole.npz"), hidden="32,32",
                 panel_scale=55.0, horizon=100, mu=0.05)


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replay")
    run_small(tmp, agents=2, rounds=2, eval_episodes=1, **USER_TASK)
    page = tmp / "replay.html"
    assert main(["eval", "--run", str(tmp / "run"), "--episodes", "2", "--html", str(page)]) == 0
    return page


def embedded(page: Path) -> dict:
    text = page.read_text()
    return json.loads(text.split("const REPLAY = ", 1)[1].split(";\nwindow.fetch", 1)[0])


def test_the_page_holds_the_page_script_and_both_sides_on_the_same_episodes(replay, capsys):
    text = replay.read_text()
    assert (STATIC / "page.js").read_text() in text                 # the page's own drawing code
    assert "<figcaption>start: return" in text and "<figcaption>round 2: return" in text
    comparison = embedded(replay)
    assert comparison["scene"]["moving"] and len(comparison["left"]) == len(comparison["right"]) == 2
    for left, right in zip(comparison["left"], comparison["right"]):
        poses = [np.frombuffer(base64.b64decode(c["poses"]), "<f4").reshape(c["frames"], c["geoms"], 7)
                 for c in (left, right)]
        assert np.array_equal(poses[0][0], poses[1][0])             # the same reset state on both sides
        assert not np.array_equal(poses[0], poses[1])               # and then two policies


def test_html_needs_a_run(tmp_path):
    with pytest.raises(SystemExit, match="--html replays a run: give it with --run RUN_DIR"):
        main(["eval", "--task", "hopper", "--html", str(tmp_path / "x.html")])


def test_the_file_draws_both_sides_in_a_browser_and_asks_for_nothing(replay):
    driver = start_browser()
    try:
        driver.get(replay.as_uri())
        wait_until(lambda: driver.execute_script("return document.body.dataset.comparison") == "1",
                   "the replay on screen")
        drawn = """const d = document.getElementById(arguments[0]).getContext("2d").getImageData(0, 0, 480, 320).data;
                   let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 200) n++; return n;"""
        wait_until(lambda: all(driver.execute_script(drawn, side) > 100 for side in ("left", "right")),
                   "both sides drawn")
        assert all(url.startswith("file:") or url.startswith("data:") for url in requested_urls(driver))
        assert not driver.find_element("id", "answers").is_displayed()
    finally:
        driver.quit()
