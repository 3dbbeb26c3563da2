"""Log lines that could repeat without bound, logged as counts per interval.

A client that opens thousands of connections, or a line that delivers
thousands of bad frames, must not write a log line each (the adversarial
test of issue 11 got 55,681 lines of "refusing ..."). The server notes each
event under a short description; at most once every TALLY_SECONDS the tally
is written as one line of counts, and `flush()` writes what is left at the
end of a run. `totals` keeps the counts of the whole run.
"""
import time

TALLY_SECONDS = 10.0


class Tally:
    """Counts of repeated events, logged as one line at most every TALLY_SECONDS."""

    def __init__(self, log, prefix="coordinator", interval=TALLY_SECONDS, clock=time.monotonic):
        self.log, self.prefix, self.interval, self.clock = log, prefix, interval, clock
        self.pending: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self._last = clock()

    def note(self, what: str, count: int = 1) -> None:
        """Count one event (what: a short description such as "refused: too many pending")."""
        self.pending[what] = self.pending.get(what, 0) + count
        self.totals[what] = self.totals.get(what, 0) + count
        self.tick()

    def tick(self) -> None:
        """Log the counts if TALLY_SECONDS passed since the last line."""
        if self.pending and self.clock() - self._last >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Log what was counted since the last line, if anything."""
        if self.pending:
            counts = "; ".join(f"{what}: {n}" for what, n in sorted(self.pending.items()))
            self.log(f"{self.prefix}: in the last {self.clock() - self._last:.0f} s: {counts}")
            self.pending.clear()
        self._last = self.clock()
