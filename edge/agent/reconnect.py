"""When an agent tries again to reach the coordinator, and when it gives up.

Both agent loops (TCP and serial) follow one policy: between failed attempts
to connect or open the port they wait FIRST_DELAY seconds, doubling up to
MAX_DELAY, and back at FIRST_DELAY once an attempt succeeds; they give up
with AgentGaveUp once `limit` seconds have passed since the coordinator was
last heard from (or since the start), so an agent never hangs.
"""
import time

FIRST_DELAY = 0.2     # seconds before the first retry
MAX_DELAY = 5.0       # the back-off stops growing here
DEFAULT_RECONNECT_SECONDS = 60.0   # the default give-up limit


def in_use_delay(refusals: int) -> float:
    """Seconds to wait before joining again after `refusals` Error ID_IN_USE in a row:
    FIRST_DELAY, doubling up to MAX_DELAY (the id frees up only after a silence)."""
    return min(FIRST_DELAY * 2 ** max(refusals - 1, 0), MAX_DELAY)


class AgentGaveUp(RuntimeError):
    """The coordinator could not be reached again within the time allowed."""


class Reconnect:
    """One agent's back-off between attempts and its give-up clock."""

    def __init__(self, limit: float):
        self.limit = limit
        self.delay = FIRST_DELAY
        self.last_heard = time.monotonic()

    def heard(self, now: float | None = None) -> None:
        """The coordinator was heard from (or a loss begins): the give-up time counts from now."""
        self.last_heard = time.monotonic() if now is None else now

    def expired(self) -> bool:
        """True once `limit` seconds have passed since the coordinator was last heard."""
        return time.monotonic() - self.last_heard > self.limit

    def connected(self) -> None:
        """An attempt succeeded: the next failure waits FIRST_DELAY again."""
        self.delay = FIRST_DELAY

    def back_off(self) -> None:
        """Sleep after a failed attempt, and double the next wait (up to MAX_DELAY)."""
        time.sleep(self.delay)
        self.delay = min(2 * self.delay, MAX_DELAY)
