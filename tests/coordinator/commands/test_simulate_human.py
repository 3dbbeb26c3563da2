"""`fedzo simulate --human`: one page queues every agent's comparisons; `--replay` repeats the run."""
import json

from fedzo.coordinator.tools.page_client import answer_until_exit, page_url, start_fedzo as start_command
from waiting import wait_until

RUN = ["--agents", "2", "--rounds", "2", "--batch", "1", "--horizon", "50", "--eval-every", "0",
       "--eval-episodes", "1", "--seed", "3", "--quiet"]


def test_one_page_drives_every_agent_and_the_replay_gives_the_same_theta(tmp_path):
    out = tmp_path / "live"
    process, lines = start_command("simulate", "--human", "127.0.0.1:0", "--out", str(out), *RUN)
    url = wait_until(lambda: page_url(lines) or process.poll() is not None and "exited", "the page's URL")
    assert url.startswith("http://127.0.0.1:") and "token" not in url, "".join(lines)
    given = answer_until_exit(process, url, lambda c: ("right", "left")[(c["agent"] + c["round"]) % 2])
    assert process.returncode == 0, "".join(lines)
    assert sorted((a, r) for a, r, _ in given) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    recorded = [json.loads(x) for x in (out / "answers.jsonl").read_text().splitlines()]
    assert sorted((r["agent"], r["round"], r["answer"]) for r in recorded) == sorted(given)
    assert json.loads((out / "config.json").read_text())["preference"] == "human"

    process, lines = start_command("simulate", "--replay", str(out / "answers.jsonl"), "--out",
                                   str(tmp_path / "replay"), *RUN)
    assert process.wait(120) == 0, "".join(lines)
    live, replay = (json.loads((tmp_path / name / "summary.json").read_text()) for name in ("live", "replay"))
    assert replay["theta_hash"] == live["theta_hash"]


def test_a_human_run_refuses_what_cannot_answer_it(tmp_path):
    for argv, what in ((["--preference", "human"], "needs --human"),
                       (["--human", "--link", "tcp"], "does not go with them"),
                       (["--replay", "x.jsonl", "--preference", "coin"], "answer a human run")):
        process, lines = start_command("simulate", "--out", str(tmp_path / "r"), *argv, *RUN)
        assert process.wait(120) == 2
        wait_until(lambda: what in "".join(lines), f"the message {what!r}")
    assert not (tmp_path / "r").exists()


def test_a_page_address_in_use_or_a_bad_answers_file_stops_before_the_run_folder(tmp_path):
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        bad = tmp_path / "bad.jsonl"
        bad.write_text("not json\n")
        for argv, what in ((["--human", f"127.0.0.1:{port}"], "in use"), (["--replay", str(bad)], "bad.jsonl:1"),
                           (["--replay", str(tmp_path / "none.jsonl")], "No such file")):
            process, lines = start_command("simulate", "--out", str(tmp_path / "r"), *argv, *RUN)
            assert process.wait(120) == 2
            wait_until(lambda: what in "".join(lines), f"the message {what!r}")
            assert not (tmp_path / "r").exists()
