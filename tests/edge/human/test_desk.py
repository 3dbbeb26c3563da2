"""The desk: comparisons in, answers out; every refusal is named and counted."""
import threading

import pytest

from fedzo.edge.human.desk import Desk, DeskClosed, Refused
from fedzo.edge.learning.preference import Where


def _post(desk, n=0):
    return desk.post(Where(0, 0, n), [], [], {})


def test_answers_go_to_the_oldest_open_comparison_and_wake_its_waiter():
    desk = Desk()
    first, second = _post(desk, 0), _post(desk, 1)
    assert desk.waiting() == 2 and desk.next_open() is first
    got = []
    waiter = threading.Thread(target=lambda: got.append(desk.wait(first, poll=0.01)))
    waiter.start()
    desk.answer(first.id, "tie")
    waiter.join()
    assert got == ["tie"] and desk.next_open() is second and desk.waiting() == 1
    assert first.seconds >= 0 and desk.counters["answered"] == 1


@pytest.mark.parametrize("ask_id, answer, reason", [(1, "left", "repeated"), (99, "left", "unknown"),
                                                    ("1", "left", "unknown"), (2, "up", "bad_answer"),
                                                    (2, None, "bad_answer")])
def test_a_repeated_unknown_or_malformed_answer_is_refused_and_counted(ask_id, answer, reason):
    desk = Desk()
    first, second = _post(desk), _post(desk, 1)
    desk.answer(first.id, "left")
    with pytest.raises(Refused) as refused:
        desk.answer(ask_id, answer)
    assert refused.value.reason == reason and desk.counters[reason] == 1
    assert second.answer is None and desk.waiting() == 1       # nothing open was touched
    if reason == "repeated":
        assert "already answered (left)" in str(refused.value)


def test_closing_the_desk_wakes_a_waiter_with_an_error():
    desk = Desk()
    ask = _post(desk)
    idled = []
    errors = []

    def wait():
        try:
            desk.wait(ask, poll=0.01, idle=lambda: idled.append(1))
        except DeskClosed as exc:
            errors.append(exc)
    waiter = threading.Thread(target=wait)
    waiter.start()
    from waiting import wait_until
    wait_until(lambda: idled, "the waiter to run its idle hook")
    desk.close()
    waiter.join()
    assert errors and desk.waiting() == 0
    with pytest.raises(DeskClosed):
        _post(desk)
