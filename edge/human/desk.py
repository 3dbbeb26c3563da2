"""The desk where comparisons wait for a person: comparisons in, answers out.

No I/O here: an agent's preference source posts a comparison and waits for
its answer; a transport (the page's HTTP server, or a test acting as the
person) takes the oldest open one and hands back an answer. Every refusal
(an answer for a comparison that is already answered or never existed, an
answer that is not one of ANSWERS) raises Refused with a message the
transport shows, and is counted in `counters`; none of them changes an
open comparison. Several agents may share one desk (`fedzo simulate
--human`): each post is a separate comparison, answered in the order posted.
"""
import itertools
import threading
import time
from dataclasses import dataclass, field

ANSWERS = ("left", "right", "tie")      # "tie" is "can't tell"
COUNTERS = ("answered", "repeated", "unknown", "bad_answer")


class Refused(Exception):
    """An answer the desk will not take; `reason` is one of COUNTERS[1:]."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class DeskClosed(RuntimeError):
    """The desk was closed while a comparison waited (the agent is stopping)."""


@dataclass
class Ask:
    """One comparison put to the person: which one, what each side shows, and its answer."""

    id: int
    where: object                   # preference.Where: agent, round, comparison
    left: list                      # clips.Clip per episode
    right: list
    scene: dict
    deadline: float = None          # time.monotonic() after which the round stops waiting (None: it waits)
    posted: float = 0.0
    shown: float = None             # first handed to a page
    answer: str = None
    answered: float = None
    encoded: bytes = None           # its page JSON, made once (payload.comparison_json)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def seconds(self) -> float:
        """How long the person took: from when a page first showed it to the answer."""
        return round(self.answered - (self.shown if self.shown is not None else self.posted), 3)


class Desk:
    """Open comparisons and their answers; safe to use from several threads."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._open = []                  # Asks without an answer, oldest first
        self._answered = {}              # id -> answer, for the message a repeated answer gets
        self._closed = False
        self.counters = dict.fromkeys(COUNTERS, 0)

    def post(self, where, left, right, scene, deadline=None) -> Ask:
        """Open a comparison; the caller then waits for it with `wait`."""
        with self._lock:
            if self._closed:
                raise DeskClosed("the desk is closed")
            ask = Ask(next(self._ids), where, left, right, scene, deadline, posted=self.clock())
            self._open.append(ask)
            return ask

    def wait(self, ask: Ask, poll: float = 1.0, idle=None) -> str:
        """Block until the person answers `ask`; its answer. `idle()` runs every `poll` seconds
        meanwhile (a transport keeping its link alive); DeskClosed if the desk closes first."""
        while not ask.done.wait(poll):
            if idle is not None:
                idle()
        if ask.answer is None:
            raise DeskClosed(f"comparison {ask.id} was not answered: the desk closed")
        return ask.answer

    def next_open(self):
        """The oldest open comparison (marked as shown), or None."""
        with self._lock:
            if not self._open:
                return None
            ask = self._open[0]
            if ask.shown is None:
                ask.shown = self.clock()
            return ask

    def waiting(self) -> int:
        """How many comparisons wait for an answer."""
        with self._lock:
            return len(self._open)

    def answer(self, ask_id, answer) -> Ask:
        """Take the person's answer to comparison `ask_id`; Refused if it cannot be taken."""
        with self._lock:
            if answer not in ANSWERS:
                return self._refuse("bad_answer", f"an answer is one of {', '.join(ANSWERS)}, got {answer!r}")
            ask = next((a for a in self._open if a.id == ask_id), None)
            if ask is None:
                if ask_id in self._answered:
                    return self._refuse("repeated", f"comparison {ask_id} is closed: it was already answered "
                                                    f"({self._answered[ask_id]}); load the next one")
                return self._refuse("unknown", f"there is no open comparison {ask_id!r}")
            ask.answer, ask.answered = answer, self.clock()
            self._open.remove(ask)
            self._answered[ask.id] = answer
            self.counters["answered"] += 1
        ask.done.set()
        return ask

    def close(self) -> None:
        """No more comparisons; whoever waits for one gets DeskClosed."""
        with self._lock:
            self._closed = True
            pending, self._open = self._open, []
        for ask in pending:
            ask.done.set()

    def _refuse(self, reason, message):
        self.counters[reason] += 1
        raise Refused(reason, message)
