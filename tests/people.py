"""A scripted person for the human-preference tests: answers a desk from a thread."""
import threading

from fedzo.edge.human.answers import AnswerLog
from fedzo.edge.human.desk import Desk
from fedzo.edge.human.source import HumanPreference


def scripted_answer(ask) -> str:
    """A fixed rule of the comparison's place, so a run's answers are known in advance."""
    return ("left", "right", "tie")[(3 * ask.where.agent + ask.where.round) % 3]


class ScriptedPerson:
    """Answers every comparison posted to `desk` with `rule(ask)` until stopped."""

    def __init__(self, desk, rule=scripted_answer):
        self.desk, self.rule = desk, rule
        self.answered = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.wait(0.005):
            ask = self.desk.next_open()
            if ask is not None:
                answer = self.rule(ask)
                self.desk.answer(ask.id, answer)
                self.answered.append((ask.where, answer))


def human_sources(count, answers_path, round_timeout=None):
    """One desk and `count` agents' HumanPreference sources sharing it and one answers file."""
    desk, log = Desk(), AnswerLog(answers_path)
    return desk, [HumanPreference(desk, log, round_timeout) for _ in range(count)]
