"""`fedzo agent --human` over TCP: the agent's own page answers a coordinator's human run."""
import json

from fedzo.coordinator.tools.page_client import answer_until_exit, page_url, start_fedzo as start_command
from serving import free_port
from waiting import wait_until

RUN = ["--agents", "1", "--rounds", "2", "--batch", "1", "--horizon", "50", "--eval-every", "0",
       "--eval-episodes", "1", "--seed", "4"]


def test_a_tcp_agent_serves_its_page_and_its_person_drives_the_run(tmp_path):
    port = free_port()
    out = tmp_path / "run"
    coordinator, clines = start_command("coordinator", "--listen", f"127.0.0.1:{port}", "--out", str(out),
                                        "--preference", "human", *RUN)
    wait_until(lambda: (out / "run.key").is_file() or coordinator.poll() is not None, "the run key")
    answers = tmp_path / "answers.jsonl"
    agent, alines = start_command("agent", "--connect", f"127.0.0.1:{port}", "--key-file", str(out / "run.key"),
                                  "--human", "127.0.0.1:0", "--answers", str(answers))
    url = wait_until(lambda: page_url(alines) or agent.poll() is not None and "exited", "the page's URL")
    assert url.startswith("http://"), "".join(alines)
    given = answer_until_exit(agent, url, lambda c: "left")
    assert agent.returncode == 0, "".join(alines)
    assert coordinator.wait(120) == 0, "".join(clines)
    assert [r for _, r, _ in given] == [0, 1]
    assert [json.loads(x)["round"] for x in answers.read_text().splitlines()] == [0, 1]
    # A human run's rounds wait ten minutes by default.
    assert json.loads((out / "run.json").read_text())["round_timeout"] == 600.0
