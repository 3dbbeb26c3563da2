"""A grid's progress as its cells finish: done / running / failed and the time left."""


class GridProgress:
    """Counts of a grid's cells and the estimate of the time left.

    The estimate is the cells not yet finished times the mean time of the cells run
    in this session, spread over the cells that run at once (`slots`).
    """

    def __init__(self, total: int, done_before: int = 0):
        self.total = total
        self.done = done_before
        self.failed = 0
        self.running = 0
        self.busy = []          # seconds of each cell run in this session

    def started(self):
        self.running += 1

    def finished(self, seconds: float, ok: bool, ran: bool = True):
        self.running -= 1
        if ok:
            self.done += 1
        else:
            self.failed += 1
        if ok and ran:
            self.busy.append(seconds)

    def seconds_left(self, slots: int):
        """Estimated seconds until every cell has finished, or None before any cell ran."""
        if not self.busy:
            return None
        left = self.total - self.done - self.failed
        return left * sum(self.busy) / len(self.busy) / max(1, slots)

    def line(self, slots: int) -> str:
        """e.g. '7 done, 2 running, 1 failed of 12; ~3 min left'."""
        text = f"{self.done} done, {self.running} running, {self.failed} failed of {self.total}"
        left = self.seconds_left(slots)
        if left is not None and self.done + self.failed < self.total:
            text += f"; ~{left / 60:.0f} min left" if left >= 90 else f"; ~{left:.0f} s left"
        return text
