"""The page in a real browser (headless Chromium): it draws both clips, and a person's clicks and keys
become the agent's answers and votes; a second tab cannot answer twice; nothing is fetched from
outside the agent; the recorded answers replay to the same theta.

One run of 2 agents x 2 rounds serves 4 comparisons, answered by a click, a key, the space bar
and a click. FEDZO_PAGE_SCREENSHOT=PATH saves a screenshot of the page (docs/human-page.png).
"""
import json
import os
import threading

import pytest
from browser import requested_urls, start_browser
from small_runs import KEY, small_config
from waiting import wait_until

from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.inproc import run_inproc
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.human.person import start_person
from fedzo.edge.human.replay import ReplayPreference
from fedzo.edge.learning.algorithm import agent_vote

# mu large enough that the two sides move visibly differently within a short episode.
CONFIG = dict(preference="human", agents=2, rounds=2, horizon=120, mu=0.3, seed=11)


@pytest.fixture(scope="module")
def driver():
    browser = start_browser()
    yield browser
    browser.quit()


def _run(folder, sources):
    config = small_config(**CONFIG)
    run = Run(config, folder, log=lambda *a: None, plots=False)
    agents = [AgentRuntime(log=lambda *a: None, preference=s) for s in sources]
    return run_inproc(run, agents, KEY, workers=len(agents), log=lambda *a: None)


def _canvas(driver, side):
    return driver.execute_script(f"return document.getElementById('{side}').toDataURL();")


def _shown(driver):
    """The id of the comparison on screen ("" while the page waits for one)."""
    return driver.execute_script("return document.body.dataset.comparison || '';")


def _status(driver):
    """The page's status line while it shows a comparison ("" while it waits for one)."""
    return driver.execute_script("return document.body.classList.contains('idle') ? '' : "
                                 "document.getElementById('status').textContent;")


def _after_frames(driver, frames=8):
    """Let the page draw `frames` more animation frames (an event, not a stretch of time)."""
    driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        let n = arguments[0];
        const step = () => (--n > 0 ? requestAnimationFrame(step) : done());
        requestAnimationFrame(step);""", frames)


def test_a_person_answers_a_run_in_the_browser_and_the_replay_repeats_it(driver, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    answers = tmp_path / "answers.jsonl"
    person = start_person(2, page="127.0.0.1:0", answers=answers, log=lambda *a: None)
    result = {}
    worker = threading.Thread(target=lambda: result.update(_run(tmp_path / "live", person.sources)), daemon=True)
    worker.start()
    base = person.server.url
    try:
        driver.get(base)
        first_tab = driver.current_window_handle
        wait_until(lambda: _shown(driver), "the page to show a comparison")
        assert "round 1" in _status(driver) and "waiting" in _status(driver)

        # Both canvases animate, and they differ.
        before = {side: _canvas(driver, side) for side in ("left", "right")}
        wait_until(lambda: all(_canvas(driver, s) != before[s] for s in before), "both canvases to change")
        wait_until(lambda: _canvas(driver, "left") != _canvas(driver, "right"), "the two clips to differ")
        driver.find_element(By.ID, "play").click()                  # pause: the picture holds still
        _after_frames(driver)
        paused = _canvas(driver, "left")
        _after_frames(driver)
        assert _canvas(driver, "left") == paused
        driver.find_element(By.ID, "play").click()
        if os.environ.get("FEDZO_PAGE_SCREENSHOT"):
            driver.save_screenshot(os.environ["FEDZO_PAGE_SCREENSHOT"])

        # A second tab shows the same comparison.
        driver.switch_to.new_window("tab")
        second_tab = driver.current_window_handle
        driver.get(base)
        wait_until(lambda: _shown(driver), "the second tab to show the comparison")
        first = _shown(driver)

        # A click in the first tab answers it ...
        driver.switch_to.window(first_tab)
        assert _shown(driver) == first
        driver.find_element(By.ID, "answer-left").click()
        wait_until(lambda: answers.is_file() and answers.read_text().count("\n") >= 1, "the first answer")
        # ... and the second tab's answer to it is refused, with the server's message.
        driver.switch_to.window(second_tab)
        driver.find_element(By.ID, "answer-right").click()
        wait_until(lambda: "already answered" in driver.find_element(By.ID, "message").text,
                   "the second tab's refusal")
        assert person.desk.counters["repeated"] == 1
        driver.close()
        driver.switch_to.window(first_tab)

        # Keys answer the rest: the right arrow, the space bar, then a click on "right".
        answered = {first}
        for n, act in enumerate((lambda: driver.switch_to.active_element.send_keys(Keys.ARROW_RIGHT),
                                 lambda: driver.switch_to.active_element.send_keys(Keys.SPACE),
                                 lambda: driver.find_element(By.ID, "answer-right").click()), start=2):
            # the next comparison on screen, not the one just answered (its reply may still be on the way)
            shown = wait_until(lambda: _shown(driver) not in answered | {""} and _shown(driver), f"comparison {n}")
            answered.add(shown)
            act()
            wait_until(lambda n=n: answers.read_text().count("\n") >= n, f"answer {n}")
        worker.join(120)
        assert not worker.is_alive() and result.get("theta_hash")

        # Nothing was fetched from outside the agent.
        urls = requested_urls(driver) + driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name);")
        assert urls and all(u.startswith(base.rstrip("/")) or u.startswith("data:") for u in urls), urls
    finally:
        person.stop()

    records = [json.loads(x) for x in answers.read_text().splitlines()]
    assert [r["answer"] for r in records] == ["left", "right", "tie", "right"]
    votes = [json.loads(x)["votes"] for x in (tmp_path / "live" / "metrics.jsonl").read_text().splitlines()
             if "votes" in json.loads(x)]
    for r in records:      # each answer became its agent's vote (the tie: the seed's tie bit)
        assert votes[r["round"]][r["agent"]] == agent_vote(r["outcome"], CONFIG["seed"], r["agent"], r["round"])
    replayed = _run(tmp_path / "replay", [ReplayPreference(answers) for _ in range(2)])
    assert replayed["theta_hash"] == result["theta_hash"]


def test_a_tcp_agent_on_every_address_serves_its_page_with_a_token_and_the_browser_fine_tunes(driver, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from fedzo.coordinator.tools.page_client import page_url, start_fedzo as start_command
    from serving import free_port
    port, out, answers = free_port(), tmp_path / "run", tmp_path / "answers.jsonl"
    coordinator, clines = start_command("coordinator", "--listen", f"127.0.0.1:{port}", "--out", str(out),
                                        "--preference", "human", "--agents", "1", "--rounds", "2", "--batch", "1",
                                        "--horizon", "80", "--mu", "0.3", "--eval-every", "0",
                                        "--eval-episodes", "1")
    wait_until(lambda: (out / "run.key").is_file() or coordinator.poll() is not None, "the run key")
    agent, alines = start_command("agent", "--connect", f"127.0.0.1:{port}", "--key-file", str(out / "run.key"),
                                  "--human", "0.0.0.0:0", "--answers", str(answers))
    try:
        printed = wait_until(lambda: page_url(alines) or agent.poll() is not None and "exited", "the page's URL")
        assert "?token=" in printed, "".join(alines)
        page_port, token = printed.split(":")[-1].split("/?token=")
        base = f"http://127.0.0.1:{page_port}/"
        driver.get(base)                                            # no token: refused
        assert "wrong or missing token" in driver.find_element(By.TAG_NAME, "body").text
        driver.get(f"{base}?token={token}")
        for n, key in enumerate((Keys.ARROW_LEFT, Keys.SPACE), start=1):
            wait_until(lambda: _shown(driver) and "round %d" % n in _status(driver), f"round {n}'s comparison")
            driver.switch_to.active_element.send_keys(key)
            wait_until(lambda n=n: answers.is_file() and answers.read_text().count("\n") >= n, f"answer {n}")
        assert agent.wait(120) == 0, "".join(alines)
        assert coordinator.wait(120) == 0, "".join(clines)
    finally:
        for process in (agent, coordinator):
            if process.poll() is None:
                process.kill()
    assert [json.loads(x)["answer"] for x in answers.read_text().splitlines()] == ["left", "tie"]
    assert any("the page took 2 answers and refused" in line and "bad token" in line for line in alines), \
        "".join(alines)
