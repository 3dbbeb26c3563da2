"""When an agent tries again to reach the coordinator, when it gives up, and what it says meanwhile.

Both agent loops (TCP and serial) follow one policy. An attempt fails when
the coordinator cannot be reached (a closed port, no route, a serial port
that does not open) or when it closes the connection before welcoming this
agent. Between failed attempts the agent waits FIRST_DELAY seconds, doubling
up to MAX_DELAY. Only a welcome (an established session) brings the wait
back to FIRST_DELAY: a connection that is accepted and then closed is a
failure like any other, so a coordinator that takes the connection and says
nothing does not make the agent hammer it (issue 12 found the back-off and
the give-up clock reset on every connect).

The agent gives up (AgentGaveUp) once `limit` seconds pass without an
authenticated message from the coordinator (or since the start, or since a
link it had was lost). Connecting is not hearing from it.

What it says: the first failure at once ("waiting for the coordinator at
WHERE (connection refused); retrying every 5 s at most, giving up after
60 s"), then a line only when the reason changes or NOTE_SECONDS have passed,
so a long wait is a few lines, not one per retry.
"""
import time

FIRST_DELAY = 0.2     # seconds before the first retry
MAX_DELAY = 5.0       # the back-off stops growing here
DEFAULT_RECONNECT_SECONDS = 60.0   # the default give-up limit
NOTE_SECONDS = 30.0   # while the failures go on, a line at most this often


def in_use_delay(refusals: int) -> float:
    """Seconds to wait before joining again after `refusals` Error ID_IN_USE in a row:
    FIRST_DELAY, doubling up to MAX_DELAY (the id frees up only after a silence)."""
    return min(FIRST_DELAY * 2 ** max(refusals - 1, 0), MAX_DELAY)


class AgentGaveUp(RuntimeError):
    """The coordinator could not be reached (again) within the time allowed."""


class Reconnect:
    """One agent's back-off between attempts, its give-up clock and its waiting lines."""

    def __init__(self, limit: float, where: str, log=print, clock=time.monotonic, sleep=time.sleep):
        self.limit, self.where, self.log = limit, where, log
        self.clock, self.sleep = clock, sleep
        self.delay = FIRST_DELAY
        self.last_heard = clock()
        self.failures = 0          # failed attempts since the last welcome
        self._said = None          # (reason, time) of the last waiting line

    def heard(self) -> None:
        """An authenticated message from the coordinator: the give-up time counts from now."""
        self.last_heard = self.clock()

    def welcomed(self) -> None:
        """A session was established: the next failure waits FIRST_DELAY again."""
        self.delay, self.failures, self._said = FIRST_DELAY, 0, None
        self.heard()

    def lost(self, why: str) -> None:
        """An established link ended: say so; the give-up time counts from the loss."""
        self.log(f"agent: {why}; reconnecting to {self.where}")
        self.heard()

    def expired(self) -> bool:
        """True once `limit` seconds have passed since the coordinator was last heard."""
        return self.clock() - self.last_heard > self.limit

    def failed(self, why: str) -> None:
        """A failed attempt: give up if the time is over, else say so (rate-limited) and back off.

        Raises AgentGaveUp naming `where`, `why` and the limit.
        """
        self.failures += 1
        if self.expired():
            raise AgentGaveUp(f"gave up: no answer from the coordinator at {self.where} for "
                              f"{self.limit:g} s ({why}); start it, check the address, "
                              f"or allow longer with --reconnect-seconds")
        self._say(why)
        self.sleep(self.delay)
        self.delay = min(2 * self.delay, MAX_DELAY)

    def _say(self, why: str) -> None:
        now = self.clock()
        if self._said is None or self._said[0] != why:
            self.log(f"agent: waiting for the coordinator at {self.where} ({why}); retrying every "
                     f"{MAX_DELAY:.0f} s at most, giving up after {self.limit:g} s without an answer")
        elif now - self._said[1] >= NOTE_SECONDS:
            left = max(self.limit - (now - self.last_heard), 0)
            self.log(f"agent: still waiting for the coordinator at {self.where} ({why}); "
                     f"{self.failures} attempts, giving up in {left:.0f} s")
        else:
            return
        self._said = (why, now)
