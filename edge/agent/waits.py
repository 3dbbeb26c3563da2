"""Lines that say what a connected agent waits for, when a wait grows long.

A joined agent can be silent for minutes for good reasons (the coordinator
waits for the other agents to join, a slow agent holds up the round, an
evaluation runs between rounds). Issue 12: every wait longer than a few
seconds must say what it waits for. The agent loops call `progress()` when
a message arrives and `tick(what)` while nothing does; `what` comes from
AgentRuntime.waiting_for(). The first line comes after FIRST_NOTE_SECONDS of
silence, later ones after twice the previous gap, up to NOTE_EVERY_SECONDS,
so an hour's wait is a few dozen lines.
"""
import time

FIRST_NOTE_SECONDS = 5.0
NOTE_EVERY_SECONDS = 120.0


class WaitNotes:
    """When to say what the agent waits for (see the module docstring)."""

    def __init__(self, log=print, clock=time.monotonic):
        self.log, self.clock = log, clock
        self.progress()

    def progress(self) -> None:
        """Something arrived: the wait, if any, is over."""
        self.since = self.clock()
        self.gap = FIRST_NOTE_SECONDS
        self.next = self.since + self.gap

    def tick(self, what: str) -> None:
        """Nothing arrived yet: say `what` the agent waits for, if a line is due."""
        now = self.clock()
        if now < self.next:
            return
        self.log(f"agent: waiting for {what} ({now - self.since:.0f} s so far)")
        self.gap = min(2 * self.gap, NOTE_EVERY_SECONDS)
        self.next = now + self.gap
