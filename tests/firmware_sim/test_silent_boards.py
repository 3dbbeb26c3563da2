"""A board that voted in no round is an error in the summary and the exit code (issue 11, item 5).

Before, a run at mixed line faults exited 0 with 2 of 3 boards having voted
in 0 of 6 rounds.
"""
from fedzo.cli import main
from fedzo.firmware_sim import simulate as board_simulation
from fedzo.firmware_sim.simulate import rounds_voted, silent_board_errors


def _board(k, status="ok"):
    return {"id": k, "status": status, "message": "", "log": f"agent-{k}.log", "link": "serial"}


def test_rounds_voted_counts_the_nonzero_votes_of_each_agent():
    metrics = [{"round": 0, "votes": [1, 0, -1]}, {"round": 1, "votes": [-1, 0, 0]}]
    assert rounds_voted(metrics, 3) == [2, 0, 1]
    assert rounds_voted([], 2) == [0, 0]


def test_a_board_that_never_voted_is_named_whatever_its_status():
    boards = [dict(_board(0), rounds_voted=6), dict(_board(1), rounds_voted=0), dict(_board(2), rounds_voted=0)]
    errors = silent_board_errors(boards)
    assert len(errors) == 2 and errors[0].startswith("board 1 voted in no round (ok:")


def test_fedzo_simulate_serial_exits_nonzero_when_a_board_never_voted(tmp_path, monkeypatch, capsys):
    def fake_simulate_boards(run, run_key, profile, **kwargs):
        boards = [dict(_board(k), rounds_voted=v) for k, v in enumerate([1, 0])]
        return {**run.finish(), "boards": boards, "errors": silent_board_errors(boards)}

    monkeypatch.setattr(board_simulation, "simulate_boards", fake_simulate_boards)
    code = main(["simulate", "--link", "serial", "--agents", "2", "--rounds", "1", "--batch", "1",
                 "--eval-every", "0", "--eval-episodes", "1", "--quiet", "--out", str(tmp_path / "run")])
    assert code == 1                                  # before: 0
    err = capsys.readouterr().err
    assert "board 1 voted in no round" in err
